"""User feature files: TOML expressions and Python FEATURES, one-line errors, the set hash."""

from __future__ import annotations

import hashlib
import re
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from aurora.features.expr import Context, close, open_, sector, volume
from aurora.features.grammar import NAMES, FeatureDefinitionError
from aurora.features.operators import Custom, Mean, Rank, Ref, Std
from aurora.features.userfeatures import (
    BUILTIN_NAMES,
    feature_set_hash,
    load_user_features,
)


def _write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def _error(path) -> str:
    with pytest.raises(FeatureDefinitionError) as info:
        load_user_features(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}")
    return message[len(str(path)):]


# -- TOML -----------------------------------------------------------------------------------
def test_toml_features_in_file_order(tmp_path):
    path = _write(tmp_path, "mine.toml", '''
        # overnight and trend
        [features]
        f_gap = "open / Ref(close, 1) - 1"   # a comment
        f_trend = """
          Mean(close, 20) /
            Mean(close, 60) - 1"""
        "f_quoted" = 'Rank(volume, sector)'
        f_joined = """Mean(close, 5) \\
            / Mean(close, 50)"""
        f_escaped = "Std(close,\\t20)"
    ''')
    features = load_user_features(path)
    assert features == {
        "f_gap": open_ / Ref(close, 1) - 1,
        "f_trend": Mean(close, 20) / Mean(close, 60) - 1,
        "f_quoted": Rank(volume, sector),
        "f_joined": Mean(close, 5) / Mean(close, 50),
        "f_escaped": Std(close, 20),
    }
    assert list(features) == ["f_gap", "f_trend", "f_quoted", "f_joined", "f_escaped"]


def test_toml_dotted_keys_and_inline_tables(tmp_path):
    dotted = _write(tmp_path, "dotted.toml", 'features.f_a = "close"\n')
    assert load_user_features(dotted) == {"f_a": close}
    inline = _write(tmp_path, "inline.toml", 'features = { f_a = "close", f_b = "volume" }\n')
    assert load_user_features(inline) == {"f_a": close, "f_b": volume}


# Each file's error, at the exact line:column of the offending token in the file.
_MULTI_LINE = '''
    [features]
    # f_b = "a comment that looks like a key"
    f_a = """
    Mean(close, 5)
    """
    f_b = "Mean(close, 5) +  clsoe"
'''


@pytest.mark.parametrize(("text", "message"), [
    (_MULTI_LINE, ":6:26: feature f_b: unknown name 'clsoe' (did you mean 'close'?)"),
    ('''
        [features]
        f_ok = "close"
        f_trend = """
          Mean(close, 20) /
            Mean(close, 60, 2) - 1"""
     ''', ":5:21: feature f_trend: Mean takes 2 arguments, Mean(x, n): got 3"),
    ('''
        [features]
        f_joined = """Mean(close, 5) \\
            / Mean(clos, 50)"""
     ''', ":3:12: feature f_joined: unknown name 'clos' (did you mean 'close'?)"),
    ('''
        [features]
        f_esc = "Mean(close,\\t\\u0020 Sdt(x))"
     ''', ":2:30: feature f_esc: unknown name 'Sdt' (did you mean 'Std'?)"),
    ('''
        [features]
        f_lit = \'\'\'
        Std(close, 20.5)\'\'\'
     ''', ":3:12: feature f_lit: the window n of Std must be an integer literal, got '20.5'"),
    ('''
        [features]
        f_open = "Mean(close, 20"
     ''', ":2:15: feature f_open: the '(' of Mean( is never closed"),
    ('''
        [features]
        f_empty = "   "
     ''', ":2:12: feature f_empty: empty expression"),
    ('features.f_a = "Rank(close, volume)"\n',
     ":1:29: feature f_a: the group of Rank must be sector, got 'volume'"),
    ('features = { f_a = "close", f_b = "close +" }\n',
     ":1:43: feature f_b: unexpected end of the expression after '+'"),
    ('''
        [features]
        f_a = "close"

        f_n = 3
     ''', ":4:1: feature f_n: features.f_n must be a string holding an expression, not an "
          "integer"),
    ('''
        [features]
        f_t = { x = "close" }
     ''', ":2:1: feature f_t: features.f_t must be a string holding an expression, not a table"),
    ('''
        [features]
          F_Bad = "close"
     ''', ":2:3: feature 'F_Bad': a feature name must match f_[a-z0-9_]+ (lower case, "
          "starting with f_)"),
    ('''
        [features]
        f_ret_1d = "close / Ref(close, 1) - 1"
     ''', ":2:1: feature f_ret_1d: the name of a built-in feature: choose another name"),
    ('''
        [features]
        f_a = "close"

        [other]
        x = 1
     ''', ":4:1: unexpected table 'other': a feature file holds only a [features] table"),
    ('''
        title = "mine"
        [features]
        f_a = "close"
     ''', ":1:1: unexpected key 'title': a feature file holds only a [features] table"),
    ('features = "close"\n', ":1:1: features must be a table ([features], then lines "
                             "f_name = \"expression\"), not a string"),
    ('[[features]]\nf_a = "close"\n', ":1:1: features must be a table ([features], then lines"
                                      " f_name = \"expression\"), not an array"),
    ('# nothing\n', ": no [features] table (write [features], then lines "
                    "f_name = \"expression\")"),
    ('''
        [features]
        f_a = "close
     ''', ":2:13: not valid TOML (Illegal character '\\n')"),
])
def test_toml_errors_name_file_line_column_and_feature(tmp_path, text, message):
    path = _write(tmp_path, "mine.toml", text)
    assert _error(path) == message


def test_toml_positions_with_windows_line_endings(tmp_path):
    path = tmp_path / "crlf.toml"
    path.write_bytes(b'[features]\r\nf_a = """\r\nclose *\r\n  Rank(close, 5)"""\r\n')
    assert _error(path) == ":4:15: feature f_a: the group of Rank must be sector, got '5'"


# -- Python ---------------------------------------------------------------------------------
_PYTHON_FEATURES = '''
    import numpy as np

    from aurora.features.expr import close, volume
    from aurora.features.operators import Mean, Rank, custom


    def dollar_share(c, v):
        """close x volume as a share of each date's total (per column)."""
        dv = c * v
        return dv / np.nansum(dv, axis=0, keepdims=True)


    FEATURES = {
        "f_mean_ratio": Mean(close, 5) / Mean(close, 20),
        "f_rank_volume": Rank(volume),
        "f_dollar_share": custom(dollar_share, close, volume, lookback=0),
    }
'''


def test_python_features_with_custom(tmp_path):
    path = _write(tmp_path, "mine.py", _PYTHON_FEATURES)
    features = load_user_features(path)
    assert list(features) == ["f_mean_ratio", "f_rank_volume", "f_dollar_share"]
    assert features["f_mean_ratio"] == Mean(close, 5) / Mean(close, 20)
    assert features["f_mean_ratio"].lookback == 19
    share = features["f_dollar_share"]
    assert isinstance(share, Custom) and share.inputs == (close, volume)
    assert repr(share) == "custom(aurora_user_features.mine.dollar_share, close, volume, " \
                          "lookback=0)"
    c = np.array([[10.0, 20.0], [30.0, 40.0]])  # (symbols x sessions)
    v = np.array([[1.0, 1.0], [1.0, 3.0]])
    out = share.compute([c, v], Context(sector_codes=np.zeros(2, dtype=np.int64)))
    np.testing.assert_allclose(out, [[0.25, 20 / 140], [0.75, 120 / 140]])


@pytest.mark.parametrize(("text", "message"), [
    ('''
        from aurora.features.expr import close

        x = 1
        FEATURES = {"f_a": clse}
     ''', ":4: error while running the file: NameError: name 'clse' is not defined"),
    ('''
        from aurora.features.expr import close
        from aurora.features.operators import Std


        def volatility():
            return Std(close, 1)


        FEATURES = {"f_vol": volatility()}
     ''', ":6: error while running the file: ValueError: Std: the window must be an integer "
          ">= 2, got 1"),
    ("x = 1\nFEATURES = {\n",
     ":2:12: error while running the file: SyntaxError: '{' was never closed"),
    ('''
        import sys
        sys.exit(3)
     ''', ":2: error while running the file: SystemExit: 3"),
    ('X = 1\n', ": defines no FEATURES (a dict of feature name -> expression)"),
    ('''
        from aurora.features.expr import close

        FEATURES = [close]
     ''', ":3: FEATURES must be a dict of feature name -> expression, not list"),
    ('''
        from aurora.features.expr import close
        from aurora.features.operators import Mean

        FEATURES = {
            "f_a": Mean(close, 20),
            "f_b": 3.0,
        }
     ''', ":6: feature f_b: FEATURES['f_b'] is float 3.0, not an expression (build one from "
          "the fields and operators, e.g. Mean(close, 20))"),
    ('''
        from aurora.features.expr import close

        FEATURES = {"f_ret_1d": close}
     ''', ":3: feature f_ret_1d: the name of a built-in feature: choose another name"),
    ('''
        from aurora.features.expr import close

        FEATURES = {"ret": close}
     ''', ":3: feature 'ret': a feature name must match f_[a-z0-9_]+ (lower case, starting "
          "with f_)"),
    ('''
        from aurora.features.expr import close

        FEATURES = {1: close}
     ''', ": a feature name must be a string, got 1"),
    ('''
        from aurora.features.expr import close
        from aurora.features.operators import custom

        FEATURES = {
            "f_double": custom(lambda c: 2 * c, close, lookback=0),
            "f_triple": custom(lambda c: 3 * c, close, lookback=0),
        }
     ''', ":6: feature f_triple: two different custom functions are named "
          "aurora_user_features.mine.<lambda> (with the same inputs and look-back they would "
          "be computed as one): give each its own def name"),
])
def test_python_errors_name_file_line_and_feature(tmp_path, text, message):
    assert _error(_write(tmp_path, "mine.py", text)) == message


def test_python_custom_function_needs_a_stable_name(tmp_path):
    path = _write(tmp_path, "mine.py", '''
        import functools

        from aurora.features.expr import close
        from aurora.features.operators import custom


        def scale(k, x):
            return k * x


        FEATURES = {"f_p": custom(functools.partial(scale, 2.0), close, lookback=0)}
    ''')
    message = _error(path)  # the function's name holds a memory address
    assert message.startswith(":11: feature f_p: custom function functools.functools.partial(")
    assert message.endswith(" has no stable name: define it with def")


def test_python_module_is_registered_only_when_it_ran(tmp_path):
    good = _write(tmp_path, "registered.py", "from aurora.features.expr import close\n"
                                             "FEATURES = {'f_a': close}\n")
    load_user_features(good)
    module = sys.modules["aurora_user_features.registered"]
    assert module.FEATURES["f_a"] is close
    (tmp_path / "other").mkdir()
    broken = _write(tmp_path / "other", "registered.py", "raise RuntimeError('no')\n")
    with pytest.raises(FeatureDefinitionError, match=r":1: error while running the file: "
                                                     r"RuntimeError: no$"):
        load_user_features(broken)
    assert sys.modules["aurora_user_features.registered"] is module  # the earlier one kept


# -- files and the hash ---------------------------------------------------------------------
def test_file_errors(tmp_path):
    assert _error(tmp_path / "missing.toml") == ": feature file not found"
    assert _error(_write(tmp_path, "mine.txt", "x")) == ": a feature file is a .toml or a " \
                                                         ".py file"
    (tmp_path / "dir.toml").mkdir()
    assert _error(tmp_path / "dir.toml") == ": is a directory, not a feature file"
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b"[features]\n# caf\xe9\n")
    assert _error(latin) == ": not a UTF-8 text file (invalid continuation byte at byte 16)"


def test_feature_set_hash():
    features = {"f_b": Mean(close, 5), "f_a": close}
    expected = hashlib.sha256(b"f_a=close\nf_b=Mean(close, 5)\n").hexdigest()[:16]
    assert feature_set_hash(features) == expected
    assert feature_set_hash(dict(reversed(list(features.items())))) == expected
    assert feature_set_hash({"f_a": close, "f_b": Mean(close, 6)}) != expected
    assert feature_set_hash({}) == hashlib.sha256(b"").hexdigest()[:16]


def test_builtin_names_are_the_catalog_and_the_intraday_family():
    # a user feature may not take the name of one of the 45 nor of the intraday family
    assert len(BUILTIN_NAMES) == 45 + 5
    assert "f_ret_1d" in BUILTIN_NAMES and "f_rv_5min_20d" in BUILTIN_NAMES


# -- docs/user-features.md ------------------------------------------------------------------
_DOC = Path(__file__).resolve().parents[2] / "docs" / "user-features.md"


def _doc_block(language: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", _DOC.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 1, language
    return blocks[0]


def test_doc_toml_example_loads(tmp_path):
    path = tmp_path / "my_features.toml"
    path.write_text(_doc_block("toml"), encoding="utf-8")
    assert list(load_user_features(path)) == ["f_gap_20d", "f_range_z", "f_vol_trend"]


def test_doc_python_example_loads(tmp_path):
    path = tmp_path / "my_features.py"
    path.write_text(_doc_block("python"), encoding="utf-8")
    features = load_user_features(path)
    assert list(features) == ["f_ret_10d", "f_volume_rank_5d", "f_up_streak"]
    c = np.array([[1.0, 2.0, 3.0, 2.0, 3.0]])
    streak = features["f_up_streak"].compute([c], Context(sector_codes=np.zeros(1)))
    np.testing.assert_array_equal(streak, [[0.0, 1.0, 2.0, 0.0, 1.0]])


def test_doc_operator_table_lists_every_operator():
    table = {m for m in re.findall(r"^\| `([A-Za-z]+)\(", _DOC.read_text(encoding="utf-8"),
                                   re.M)}
    table |= set(re.findall(r", `([A-Za-z]+)\(", _DOC.read_text(encoding="utf-8")))
    operators = {name for name, obj in NAMES.items() if isinstance(obj, type)}
    assert operators | {"custom"} == table


_TRICKY_TOML = r'''
title = "x" # a "comment" with [brackets]
numbers = [ 1, 2,   # a comment in an array
  3, "]", 'lit]', """multi
]""" ]
when = 1979-05-27 07:32:00Z
inline = { a = "{", b.c = [1, { d = "}" }], "quoted key" = 'v' }

[ "features" ]   # a header with spaces and a quoted key
"f_a" = "close" # ok
'f_b'.x = 'volume'
f_c = """
a "quoted" ""word"" and \"\"\" ] [ # not a comment
"""
f_d = """\
    joined \t\u00e9 \
    text"""
f_e = <SQ>''three''<SQ>
f_f = """""quotes"""""

[[array.of.tables]]
name = "one"
[[array.of.tables]]
name = "two\\"
'''


def _strings(tree, keys=()):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _strings(value, (*keys, key))
        elif isinstance(value, str):
            yield (*keys, key), value


def test_toml_scanner_finds_every_key_and_string():
    import tomllib

    from aurora.features.userfeatures import _TomlPlaces

    text = _TRICKY_TOML.lstrip("\n").replace("<SQ>", "\'" * 3)
    places = _TomlPlaces.of(text)
    tree = tomllib.loads(text)
    top_strings = {k: v for k, v in _strings(tree) if k[0] not in ("array",)}
    assert len(top_strings) == 9
    for keys, value in top_strings.items():
        decoded, offsets = places.strings[keys]
        assert decoded == value, keys
        assert len(offsets) == len(value) + 1
        for char, offset in zip(value, offsets, strict=False):
            assert text[offset] == char or text[offset] == "\\", (keys, char)
    assert places.where(("features", "f_a")) == (9, 1)
    assert places.where(("features", "f_b", "x")) == (10, 1)
    assert places.where(("features", "f_d")) == (14, 1)
    assert places.where(("features",)) == (8, 1)
    assert places.where(("inline", "b", "c")) == (6, 21)
    assert places.where(("array", "of", "tables")) == (20, 1)
    assert places.where(("nowhere",)) == (None, None)
