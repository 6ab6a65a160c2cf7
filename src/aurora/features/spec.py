"""The declaration of one feature: data, not code paths.

A `FeatureSpec` names a feature, its family, its look-back in sessions, a formula in words
and a function returning the polars expression that computes it. The builder evaluates the
expressions; nothing is parsed or `eval`-ed.

Look-back contract: the value for (symbol, t) depends only on that symbol's bars at sessions
t - lookback .. t (and, for the cross-sectional stage, on other symbols' values at t, themselves
computed under the same rule). The builder masks a series feature to null while fewer than
`lookback` sessions of the symbol precede t, and emits a row only when every feature's
look-back is full.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import polars as pl

Family = Literal["price", "volume", "cross_sectional", "residual"]
Stage = Literal["series", "market", "cross"]

FAMILIES: tuple[Family, ...] = ("price", "volume", "cross_sectional", "residual")


@dataclass(frozen=True)
class FeatureSpec:
    """One feature of the panel.

    stage: "series" features are per-symbol time-series expressions evaluated on the panel
    sorted by (symbol, date); "market" ones are time-series expressions that also read the
    equal-weight market return `_mkt` of each date; "cross" ones are evaluated per date (they
    use `.over("date")`) on the already computed series features.
    """

    name: str
    family: Family
    lookback: int
    formula: str
    expr: Callable[[], pl.Expr]
    stage: Stage = "series"
    windowed: bool = True

    # windowed=True: the expression holds rolling state (sums, moments), so the builder
    # evaluates it per symbol (`.over("symbol")`), keeping every symbol's floating-point
    # history independent of its neighbours. Shift-only expressions set it False and run on
    # the whole column (their values before the look-back is full are masked anyway).
