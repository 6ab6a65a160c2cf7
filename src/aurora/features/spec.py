"""The declaration of one feature: data, not code paths.

A `FeatureSpec` names a feature, its family, its look-back in sessions, a formula in words
and a function computing it from named wide arrays (`WidePanel`: symbols x sessions float64
matrices, NaN = missing). The engine calls the functions; nothing is parsed or `eval`-ed.

Look-back contract: the value for (symbol, t) depends only on that symbol's bars at sessions
t - lookback .. t (and, for the cross-sectional stage, on other symbols' values at t, themselves
computed under the same rule). The engine masks a feature to missing while fewer than
`lookback` sessions of the symbol precede t, and emits a row only when every feature's
look-back is full.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    from aurora.features.wide import WidePanel

Family = Literal["price", "volume", "cross_sectional", "residual"]
Stage = Literal["series", "market", "cross"]

FAMILIES: tuple[Family, ...] = ("price", "volume", "cross_sectional", "residual")


@dataclass(frozen=True)
class FeatureSpec:
    """One feature of the panel.

    fn: maps the wide panel to a (symbols x sessions) float64 array. Time-series functions
    work along axis 1 (each row is one symbol, so a running kernel is causal per symbol and
    no symbol's floating-point state leaks into another's); cross-sectional ones along
    axis 0 (one column = one date).
    stage: "series" features read prices and f_ret_1d; "market" ones also read the
    equal-weight market return `_mkt` and the beta/residual helpers; "cross" ones read the
    already computed series and market features of the same date.
    """

    name: str
    family: Family
    lookback: int
    formula: str
    fn: Callable[[WidePanel], np.ndarray]
    stage: Stage = "series"
