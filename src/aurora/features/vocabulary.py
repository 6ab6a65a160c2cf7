"""The vocabulary of the expression grammar (`aurora.features.grammar`): every name a
feature's text may use and the Python object it denotes, with each operator's signature
(argument labels and kinds, how many are required). `aurora.features` exports the same
objects under the same names, so the grammar and Python feature files are one language.
"""

from __future__ import annotations

from dataclasses import dataclass

from aurora.features import expr as expr_module
from aurora.features.expr import (
    Abs,
    Coalesce,
    Expr,
    Greater,
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
from aurora.schemas import INTRADAY_FIELDS

EXPRESSION, WINDOW, NUMBER, GROUP = "expression", "window", "number", "group"


@dataclass(frozen=True)
class Signature:
    cls: type[Expr]
    params: tuple[tuple[str, str], ...]  # (label, kind)
    required: int

    def text(self, name: str) -> str:
        shown = ", ".join(label for label, _ in self.params[:self.required])
        for label, _ in self.params[self.required:]:
            shown += f"[, {label}"
        return f"{name}({shown}{']' * (len(self.params) - self.required)})"

    def count(self) -> str:
        lo, hi = self.required, len(self.params)
        if lo == hi:
            return f"{lo} argument{'s' if lo != 1 else ''}"
        return f"{lo} or {hi} arguments" if hi == lo + 1 else f"{lo} to {hi} arguments"


def _sig(cls: type[Expr], *params: str, optional: int = 0) -> Signature:
    kinds = {"n": WINDOW, "q": NUMBER, "p": NUMBER, "sector": GROUP}
    return Signature(cls, tuple((p, kinds.get(p, EXPRESSION)) for p in params),
                      len(params) - optional)


SIGNATURES: dict[str, Signature] = {
    # element-wise
    "Abs": _sig(Abs, "x"), "Sign": _sig(Sign, "x"), "Log": _sig(Log, "x"),
    "Sqrt": _sig(Sqrt, "x"), "Power": _sig(Power, "x", "p"),
    "Where": _sig(Where, "cond", "a", "b", optional=1), "Present": _sig(Present, "x"),
    "Coalesce": _sig(Coalesce, "a", "b"), "Less": _sig(Less, "a", "b"),
    "Greater": _sig(Greater, "a", "b"),
    # time series
    "Ref": _sig(Ref, "x", "n"), "Delta": _sig(Delta, "x", "n"), "Mean": _sig(Mean, "x", "n"),
    "Sum": _sig(Sum, "x", "n"), "Std": _sig(Std, "x", "n"), "Var": _sig(Var, "x", "n"),
    "Min": _sig(Min, "x", "n"), "Max": _sig(Max, "x", "n"),
    "Median": _sig(Median, "x", "n"), "Quantile": _sig(Quantile, "x", "n", "q"),
    "EMA": _sig(EMA, "x", "n"), "Skew": _sig(Skew, "x", "n"), "Kurt": _sig(Kurt, "x", "n"),
    "Corr": _sig(Corr, "x", "y", "n"), "Cov": _sig(Cov, "x", "y", "n"),
    "Beta": _sig(Beta, "x", "y", "n"), "Resid": _sig(Resid, "x", "y", "n"),
    "Slope": _sig(Slope, "x", "n"), "Rsquare": _sig(Rsquare, "x", "n"),
    # cross-sectional and market
    "Rank": _sig(Rank, "x", "sector", optional=1),
    "ZScore": _sig(ZScore, "x", "sector", optional=1),
    "Demean": _sig(Demean, "x", "sector", optional=1),
    "Winsorize": _sig(Winsorize, "x", "q", "sector", optional=2),
    "Market": _sig(Market, "x"),
}

FIELD_NAMES: dict[str, Expr] = {
    "open": open_, "high": high, "low": low, "close": close, "volume": volume, "vwap": vwap,
    "dollar_volume": dollar_volume, "shares_outstanding": shares_outstanding,
    **{name: getattr(expr_module, name) for name in INTRADAY_FIELDS},
}

NAMES: dict[str, object] = {
    **FIELD_NAMES, "sector": sector, **{name: s.cls for name, s in SIGNATURES.items()},
}
"""Every name of the grammar and the Python object it denotes (`aurora.features` exports
the same objects under the same names, `open` as `open_`)."""

GROUPED = "Rank, ZScore, Demean or Winsorize"
