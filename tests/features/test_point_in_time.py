"""No lookahead: perturbing every bar after T leaves every feature at or before T unchanged,
for all 45 features; and each declared look-back is long enough."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from aurora.calendar import sessions_back
from aurora.features.compute import compute_features
from aurora.features.gates import check_lookahead, compare_until, perturb_after
from aurora.features.registry import FEATURE_NAMES, REGISTRY

from .conftest import SECTORS, random_fundamentals, random_panel


@pytest.fixture(scope="module")
def gappy():
    return random_panel(n_sessions=330, seed=11, missing=0.02)


def _compute(prices, fundamentals=None):
    return compute_features(prices, sectors=SECTORS, fundamentals=fundamentals)


@pytest.mark.parametrize("offset", [3, 25])
def test_perturbing_after_t_changes_nothing_at_or_before_t(gappy, offset):
    fund = random_fundamentals(gappy)
    base = _compute(gappy, fund)
    cutoff = sorted(base["date"].unique())[-offset]
    other = _compute(perturb_after(gappy, cutoff, seed=offset), fund)
    assert compare_until(base, other, cutoff, rtol=0.0) == {}  # exactly equal
    # the check has teeth: features after T did change, for every feature
    changed = compare_until(base.filter(pl.col("date") > cutoff),
                            other.filter(pl.col("date") > cutoff), dt.date(2100, 1, 1))
    assert {"f_ret_1d", "f_vol_5d", "f_cs_rank_ret", "f_ret_market_neutral"} <= set(changed)
    assert len(changed) >= 30
    checked = base.filter(pl.col("date") <= cutoff)
    assert checked.height >= 8 * 20
    assert checked.select(pl.col(FEATURE_NAMES).null_count().max()).max_horizontal().item() \
        < checked.height


def test_check_lookahead_gate_passes_and_catches_a_leak(gappy):
    cutoff = sorted(gappy["date"].unique())[-10]
    assert check_lookahead(gappy, _compute, cutoff).passed

    def leaky(prices):
        out = _compute(prices)
        nxt = pl.col("f_ret_1d").shift(-1).over("symbol")  # tomorrow's return
        return out.with_columns(nxt.alias("f_ret_5d"))

    result = check_lookahead(gappy, leaky, cutoff)
    assert not result.passed and result.feature == "f_ret_5d"
    assert str(cutoff) in result.dates


def test_declared_lookbacks_are_sufficient(panel):
    """Perturbing bars older than t - lookback leaves a feature's value at t unchanged."""
    base = _compute(panel)
    target = base["date"].max()
    rows = base.filter(pl.col("date") == target)
    rng = np.random.default_rng(5)
    for lookback in sorted({s.lookback for s in REGISTRY}):
        names = [s.name for s in REGISTRY if s.lookback == lookback]
        first_used = sessions_back(target, lookback)
        early = panel["date"] < first_used
        f = pl.Series(np.where(early.to_numpy(), rng.uniform(0.5, 1.5, panel.height), 1.0))
        moved = panel.with_columns(pl.col(c) * f for c in ("open", "high", "low", "close",
                                                           "volume"))
        again = _compute(moved).filter(pl.col("date") == target)
        for n in names:
            a, b = rows[n].to_numpy(), again[n].to_numpy()
            assert np.allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True), (n, lookback)
