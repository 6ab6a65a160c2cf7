"""The expression grammar: precedence, positions of errors, names, round trips."""

from __future__ import annotations

import math
import operator

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aurora.errors import ConfigError
from aurora.features import catalog, expr, operators
from aurora.features.expr import (
    Abs,
    Binary,
    Coalesce,
    Const,
    Expr,
    Greater,
    Group,
    Less,
    Log,
    Power,
    Present,
    Sign,
    Sqrt,
    Where,
    close,
    dollar_volume,
    high,
    low,
    open_,
    sector,
    shares_outstanding,
    volume,
    vwap,
)
from aurora.features.grammar import (
    MAX_DEPTH,
    MAX_NESTING,
    NAMES,
    FeatureDefinitionError,
    parse_expression,
)
from aurora.features.operators import (
    EMA,
    Beta,
    Corr,
    Cov,
    Delta,
    Demean,
    Kurt,
    Market,
    Max,
    Mean,
    Median,
    Min,
    Quantile,
    Rank,
    Ref,
    Resid,
    Rsquare,
    Skew,
    Slope,
    Std,
    Sum,
    Var,
    Winsorize,
    ZScore,
)


# -- the text means what the same text means in Python -------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("close", close),
    ("open", open_),
    ("3", Const(3.0)),
    ("-close ** 2", -(close ** 2)),
    ("close ** 2 ** 3", close ** 8),  # right-associative: 2 ** 3 first, a number
    ("close ** -1", close ** -1),
    ("(-close) ** 2", (-close) ** 2),
    ("-2 ** 2", Const(-4.0)),
    ("close - volume - high", (close - volume) - high),
    ("close / volume * 2", (close / volume) * 2),
    ("close + volume * 2", close + (volume * 2)),
    ("close * -volume", close * -volume),
    ("close - -1", close - -1),
    ("-1 - close", -1 - close),
    ("- -close", operator.neg(-close)),
    ("1 / 4 * close", 0.25 * close),
    ("2 < close", close > 2),  # Python reflects a comparison with a number on the left
    ("close + 1 > volume * 2", (close + 1) > (volume * 2)),
    ("close <= 1e-3", close <= 0.001),
    (".5 * close + 1. + 1E+06", 0.5 * close + 1.0 + 1e6),
    ("Mean(close, 20) / Ref(close, 5) - 1", Mean(close, 20) / Ref(close, 5) - 1),
    ("  Mean( close ,\n\t20 , )  ", Mean(close, 20)),
    ("Winsorize(close)", Winsorize(close)),
    ("Winsorize(close, 0.05, sector)", Winsorize(close, 0.05, sector)),
    ("Rank(close, sector)", Rank(close, sector)),
    ("ZScore(Rank(volume))", ZScore(Rank(volume))),
    ("Where(close > open, 1, -1)", Where(close > open_, 1, -1)),
    ("Where(volume > 0, close)", Where(volume > 0, close)),
    ("Quantile(close, 20, 0.25)", Quantile(close, 20, 0.25)),
    ("Corr(close, Market(close), 10)", Corr(close, Market(close), 10)),
    ("Power(Abs(close), 0.5)", Power(Abs(close), 0.5)),
    ("Ref(close, (5))", Ref(close, 5)),
    ("Sum(Abs(Delta(close, 1)), 10) / Std(close, 10)",
     Sum(Abs(Delta(close, 1)), 10) / Std(close, 10)),
])
def test_text_parses_as_the_python_expression(text, expected):
    assert parse_expression(text) == expected


def test_trees_have_the_expected_shape():
    zero = Const(0.0)
    assert parse_expression("-close ** 2").key == \
        Binary("-", zero, Binary("**", close, Const(2.0))).key
    assert parse_expression("close - volume * high").key == \
        Binary("-", close, Binary("*", volume, high)).key
    assert parse_expression("2 < close").key == Binary(">", close, Const(2.0)).key
    # `number ** expression` is grammar only while Expr has no __rpow__
    assert parse_expression("2 ** close").key == Binary("**", Const(2.0), close).key


# -- errors: one line, the exact position of the offending token ----------------------------
@pytest.mark.parametrize(("text", "message"), [
    ("", "1:1: empty expression"),
    ("   ", "1:1: empty expression"),
    ("clsoe", "1:1: unknown name 'clsoe' (did you mean 'close'?)"),
    ("mean(close, 5)", "1:1: unknown name 'mean' (did you mean 'Mean'?)"),
    ("open_ / close", "1:1: unknown name 'open_' (did you mean 'open'?)"),
    ("close * xyzzy", "1:9: unknown name 'xyzzy'"),
    ("Mean(close)", "1:11: Mean takes 2 arguments, Mean(x, n): got 1"),
    ("Mean(close, 20, 3)", "1:17: Mean takes 2 arguments, Mean(x, n): got 3"),
    ("Rank(close, sector, 1)", "1:21: Rank takes 1 or 2 arguments, Rank(x[, sector]): got 3"),
    ("Winsorize()", "1:11: Winsorize takes 1 to 3 arguments, Winsorize(x[, q[, sector]]): "
                    "got 0"),
    ("Mean(close, 20.0)", "1:13: the window n of Mean must be an integer literal, got '20.0'"),
    ("Mean(close, 2 * 10)", "1:13: the window n of Mean must be an integer literal, got "
                            "'2 * 10' (no arithmetic in a window)"),
    ("Mean(close, volume)", "1:13: the window n of Mean must be a number, not the "
                            "expression 'volume'"),
    ("Std(close, 1)", "1:12: the window n of Std must be an integer >= 2, got 1"),
    ("Ref(close, -1)", "1:12: the window n of Ref must be an integer >= 1, got -1"),
    ("Mean(close, 1000000)", "1:13: the window n of Mean is too large: 1000000 sessions (at "
                             "most 100000)"),
    ("Quantile(close, 20, volume)", "1:21: q of Quantile must be a number, not the "
                                    "expression 'volume'"),
    ("Quantile(close, 20, 2)", "1:21: Quantile: q must be within 0..1, got 2.0"),
    ("Winsorize(close, 0.7)", "1:18: Winsorize: q must be within 0..0.5, got 0.7"),
    ("Rank(close, volume)", "1:13: the group of Rank must be sector, got 'volume'"),
    ("close + sector", "1:9: sector can only be the group argument of Rank, ZScore, Demean or"
                       " Winsorize, as in Rank(x, sector)"),
    ("Mean(sector, 5)", "1:6: sector can only be the group argument of Rank, ZScore, Demean or"
                        " Winsorize, as in Rank(x, sector)"),
    ("Mean", "1:1: Mean is an operator: call it as Mean(x, n)"),
    ("close(5)", "1:1: close is a field, not an operator: it takes no arguments"),
    ("custom(close)", "1:1: custom(fn, *inputs, lookback=n) exists in Python feature files "
                      "only (.py), not in expressions"),
    ("Where(close > 0, close, nan)", "1:25: 'nan' is not a value of the grammar "
                                     "(Where(cond, a) is missing where cond is 0)"),
    ("Mean(close, 20", "1:5: the '(' of Mean( is never closed"),
    ("(close + 1", "1:1: '(' is never closed"),
    ("(close volume)", "1:8: expected ')' to close the '(' at 1:1, got name 'volume'"),
    ("close)", "1:6: unmatched ')'"),
    ("()", "1:2: empty parentheses: expected an expression"),
    ("close +", "1:8: unexpected end of the expression after '+'"),
    ("close close", "1:7: unexpected name 'close' after a complete expression (a missing "
                    "operator or comma?)"),
    ("Mean(close 20)", "1:12: expected ',' or ')' after argument 1 of Mean, got number '20'"),
    ("Mean(, 20)", "1:6: expected an expression, got ','"),
    ("close < volume < high", "1:16: comparisons do not chain: a < b < c is not an "
                              "expression; write (a < b) * (b < c)"),
    ("1 < 2", "1:3: comparing two numbers (1 < 2) gives no expression"),
    ("close * (1 / 0)", "1:12: division by zero in 1 / 0"),
    ("close * 1e400", "1:9: number 1e400 is too large"),
    ("close * 10 ** 400", "1:12: number 10 ** 400 is too large"),
    ("close * (-8) ** 0.5", "1:14: (-8) ** 0.5 is not a real number"),
    ("close == 1", "1:7: '==' is not an operator of the grammar (comparisons: < <= > >=)"),
    ("close // 2", "1:7: '//' is not an operator of the grammar (division is /)"),
    ("close ^ 2", "1:7: '^' is not an operator of the grammar (a power is **)"),
    ("Winsorize(close, q=0.1)", "1:19: '=' is not part of the grammar (arguments are "
                                "positional, comparisons are < <= > >=)"),
    ("+close", "1:1: unary '+' is not part of the grammar"),
    ("close @ 2", "1:7: unexpected character '@'"),
    ("close * 1.2.3", "1:9: invalid number '1.2.3'"),
    ("close * 2x", "1:9: invalid number '2x'"),
    ("close * 007", "1:9: invalid number '007': an integer has no leading zeros"),
])
def test_error_names_the_position_and_problem(text, message):
    with pytest.raises(FeatureDefinitionError) as info:
        parse_expression(text)
    assert str(info.value) == f"<expression>:{message}"
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ConfigError)


def test_error_positions_count_from_where_the_text_starts_in_its_file():
    text = "Mean(close, 20)\n  / Sdt(close, 5)"
    with pytest.raises(FeatureDefinitionError) as info:
        parse_expression(text, source="my.toml", line=7, column=12)
    assert str(info.value) == "my.toml:8:5: unknown name 'Sdt' (did you mean 'Std'?)"
    assert (info.value.line, info.value.column) == (8, 5)
    with pytest.raises(FeatureDefinitionError, match=r"^my.toml:7:16: the '\(' of Mean\( is "):
        parse_expression("Mean(close, 20\n", source="my.toml", line=7, column=12)
    with pytest.raises(FeatureDefinitionError, match=r"^my.toml:9:1: unexpected end "):
        parse_expression("close\n*\n", source="my.toml", line=7, column=12)


def test_nesting_and_depth_are_bounded():
    nested = "(" * (MAX_NESTING - 1) + "close" + ")" * (MAX_NESTING - 1)
    assert parse_expression(nested) == close
    too_deep = "(" * MAX_NESTING + "close" + ")" * MAX_NESTING
    with pytest.raises(FeatureDefinitionError,  # at `close`, inside the 64th parenthesis
                       match=rf"^<expression>:1:{MAX_NESTING + 1}: expression nested more"):
        parse_expression(too_deep)
    chain = " + ".join(["close"] * (MAX_DEPTH + 1))  # MAX_DEPTH additions, one in another
    assert parse_expression(chain).lookback == 0
    with pytest.raises(FeatureDefinitionError) as info:
        parse_expression(chain + " + close")
    assert str(info.value) == \
        f"<expression>:1:{len(chain) + 2}: expression nested more than {MAX_DEPTH} levels deep"


# -- names: the grammar's and the Python ones are the same set ------------------------------
_NOT_GRAMMAR = {"Expr", "Field", "Const", "Binary", "Custom"}  # building blocks, `custom`


def _python_names() -> dict[str, object]:
    found: dict[str, object] = {}
    for module in (expr, operators):
        for attr, obj in vars(module).items():
            if attr.startswith("_") or attr in _NOT_GRAMMAR:
                continue
            own_class = isinstance(obj, type) and issubclass(obj, Expr) \
                and obj.__module__ == module.__name__
            if own_class or isinstance(obj, Expr | Group):
                found[attr] = obj
    return found


def _as_python(name: str) -> str:
    return "open_" if name == "open" else name


def test_grammar_names_are_the_python_names():
    assert {_as_python(n): obj for n, obj in NAMES.items()} == _python_names()
    assert NAMES["open"] is open_ and NAMES["sector"] is sector and NAMES["Mean"] is Mean


def test_grammar_names_are_exported_by_aurora_features():
    import aurora.features as package

    for name, obj in NAMES.items():
        assert getattr(package, _as_python(name)) is obj, name
    assert package.custom is operators.custom


def test_where_without_an_else_is_missing_there_and_one_expression():
    cond = close > Ref(close, 1)
    assert Where(cond, close) == Where(cond, close, math.nan)
    assert Where(cond, close) != Where(cond, close, 0)
    assert repr(Where(cond, close)) == "Where(close > Ref(close, 1), close)"
    assert parse_expression("Where(close > Ref(close, 1), close)") == Where(cond, close)
    with pytest.raises(TypeError, match="not an expression or a number"):
        Where(cond, close, None)
    out = Where(cond, close).compute([np.array([[1.0, 0.0, np.nan]]), np.array([[5.0] * 3])],
                                     None)  # type: ignore[arg-type]
    np.testing.assert_array_equal(out, [[5.0, np.nan, np.nan]])


# -- round trips ----------------------------------------------------------------------------
@pytest.mark.parametrize("feature", catalog.CATALOG, ids=lambda f: f.name)
def test_catalog_expressions_round_trip(feature):
    parsed = parse_expression(repr(feature.expr))
    assert parsed == feature.expr
    assert parsed.lookback == feature.expr.lookback


_FIELDS = [open_, high, low, close, volume, vwap, dollar_volume, shares_outstanding]
_BINARY = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
           "**": operator.pow, "<": operator.lt, "<=": operator.le, ">": operator.gt,
           ">=": operator.ge}


def _binary(op: str, a: Expr, b: Expr | float, number_first: bool) -> Expr:
    fn = _BINARY[op]
    if number_first and not isinstance(b, Expr):
        return fn(b, a)
    return fn(a, b)


def _trees(numbers: st.SearchStrategy[float], quantiles: st.SearchStrategy[float],
           tails: st.SearchStrategy[float]) -> st.SearchStrategy[Expr]:
    """Random expressions built with the Python operators, as a feature file would."""

    def extend(x: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
        x_or_number = st.one_of(x, numbers)
        series = st.sampled_from([Ref, Delta, Mean, Sum, Std, Var, Min, Max, Median, EMA,
                                  Skew, Kurt, Slope, Rsquare])
        return st.one_of(
            st.builds(_binary, st.sampled_from(list(_BINARY)), x, x_or_number, st.booleans()),
            x.map(operator.neg),
            st.builds(lambda cls, a: cls(a),
                      st.sampled_from([Abs, Sign, Log, Sqrt, Present, Market]), x),
            st.builds(Power, x, numbers),
            st.builds(lambda c, a, b: Where(c, a) if b is None else Where(c, a, b),
                      x, x_or_number, st.none() | x_or_number),
            st.builds(lambda cls, a, b: cls(a, b),
                      st.sampled_from([Coalesce, Less, Greater]), x, x_or_number),
            st.builds(lambda cls, a, n: cls(a, n), series, x, st.integers(4, 300)),
            st.builds(Quantile, x, st.integers(1, 300), quantiles),
            st.builds(lambda cls, a, b, n: cls(a, b, n),
                      st.sampled_from([Corr, Cov, Beta, Resid]), x, x, st.integers(2, 300)),
            st.builds(lambda cls, a, by: cls(a, sector) if by else cls(a),
                      st.sampled_from([Rank, ZScore, Demean]), x, st.booleans()),
            st.builds(lambda a, q, by: Winsorize(a, q, sector) if by else Winsorize(a, q),
                      x, tails, st.booleans()),
        )

    return st.recursive(st.sampled_from(_FIELDS), extend, max_leaves=12)


@given(_trees(st.floats(allow_nan=False, allow_infinity=False), st.floats(0.0, 1.0),
              st.floats(0.0, 0.5, exclude_max=True)))
def test_random_expressions_round_trip(e):
    parsed = parse_expression(repr(e))
    assert parsed == e
    assert repr(parsed) == repr(e)
