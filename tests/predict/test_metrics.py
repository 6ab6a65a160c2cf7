"""Metric functions on tiny hand-built frames with known answers (alphalens style)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aurora.predict import metrics

D1, D2, D3 = dt.date(2024, 1, 2), dt.date(2024, 1, 3), dt.date(2024, 1, 4)


def frame(rows: list[tuple[dt.date, str, float | None, float | None]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"date": pl.Date, "symbol": pl.String,
                                      "score": pl.Float64, "label": pl.Float64}, orient="row")


def test_ic_perfect_and_inverse():
    f = frame([(D1, s, x, x) for s, x in zip("ABCD", [1.0, 2, 3, 4], strict=True)]
              + [(D2, s, x, 5 - x) for s, x in zip("ABCD", [1.0, 2, 3, 4], strict=True)])
    ic = metrics.information_coefficient(f)
    assert ic["date"].to_list() == [D1, D2]
    assert ic["ic"].to_list() == pytest.approx([1.0, -1.0])
    assert ic["n"].to_list() == [4, 4]


def test_rank_ic_ignores_monotone_nonlinearity():
    f = frame([(D1, s, x, x**2) for s, x in zip("ABCD", [1.0, 2, 3, 4], strict=True)])
    pearson = metrics.information_coefficient(f)["ic"][0]
    spearman = metrics.information_coefficient(f, method="spearman")["ic"][0]
    assert spearman == pytest.approx(1.0)
    # Pearson of x and x^2 over 1..4: cov 6.25 / sqrt(1.25 * 32.5625)
    assert pearson == pytest.approx(6.25 / math.sqrt(1.25 * 32.25))


def test_ic_handles_nulls_small_dates_and_constant_scores():
    f = frame([
        (D1, "A", 1.0, 0.1), (D1, "B", 2.0, 0.3), (D1, "C", 3.0, 0.2), (D1, "D", None, 9.0),
        (D2, "A", 1.0, 0.1), (D2, "B", 2.0, 0.2),                      # too few names
        (D3, "A", 1.0, 0.1), (D3, "B", 1.0, 0.2), (D3, "C", 1.0, 0.3),  # no dispersion
    ])
    ic = metrics.information_coefficient(f)
    assert ic["n"].to_list() == [3, 2, 3]
    assert ic["ic"][0] == pytest.approx(0.5)
    assert ic["ic"][1] is None and ic["ic"][2] is None


def test_newey_west_known_values():
    x = [1.0, 2.0, 3.0, 4.0]
    # lag 0: mean / sqrt(population variance / n) = 2.5 / sqrt(1.25 / 4)
    assert metrics.newey_west_tstat(x, 0) == pytest.approx(2.5 / math.sqrt(1.25 / 4))
    # lag 1: gamma1 = (0.75 - 0.25 + 0.75) / 4, weight 1/2 -> long-run variance 1.5625
    assert metrics.newey_west_tstat(x, 1) == pytest.approx(4.0)
    assert math.isnan(metrics.newey_west_tstat([1.0], 0))


def test_newey_west_shrinks_t_for_overlapping_series():
    rng = np.random.default_rng(3)
    shocks = rng.normal(0.02, 0.1, 2005)
    overlapping = np.convolve(shocks, np.ones(5) / 5, mode="valid")  # an MA(4) series
    naive = metrics.newey_west_tstat(overlapping, 0)
    adjusted = metrics.newey_west_tstat(overlapping, 4)
    assert adjusted < naive / 1.5


def test_series_summary():
    s = metrics.series_summary([0.1, 0.3, float("nan")], 0)
    assert s["n"] == 2 and s["mean"] == pytest.approx(0.2)
    assert s["std"] == pytest.approx(math.sqrt(0.02))
    assert s["ir"] == pytest.approx(0.2 / math.sqrt(0.02))
    empty = metrics.series_summary([], 0)
    assert empty == {"mean": None, "std": None, "ir": None, "t": None, "n": 0}


def test_quantiles_returns_spread_and_turnover():
    symbols = list("ABCDEFGHIJ")
    rows = [(D1, s, float(i), float(i) / 100) for i, s in enumerate(symbols)]
    # On D2 the order is reversed except that J stays on top; E and F tie (broken by symbol).
    scores2 = {s: float(10 - i) for i, s in enumerate(symbols)} | {"J": 20.0, "E": 3.0, "F": 3.0}
    rows += [(D2, s, scores2[s], 0.01) for s in symbols]
    q = metrics.assign_quantiles(frame(rows), 5)
    d1 = dict(q.filter(pl.col("date") == D1).select("symbol", "quantile").iter_rows())
    assert d1 == {"A": 1, "B": 1, "C": 2, "D": 2, "E": 3, "F": 3, "G": 4, "H": 4,
                  "I": 5, "J": 5}
    d2 = dict(q.filter(pl.col("date") == D2).select("symbol", "quantile").iter_rows())
    assert d2["J"] == 5 and d2["A"] == 5 and d2["I"] == 1
    # Ascending on D2: I 2, E 3, F 3, H 3, G 4, ...: the E/F tie is broken by symbol.
    assert (d2["I"], d2["E"], d2["F"], d2["H"]) == (1, 1, 2, 2)
    daily = metrics.quantile_daily_returns(q)
    by_q = metrics.mean_return_by_quantile(daily)
    # D1 quantile means: 0.005, 0.025, 0.045, 0.065, 0.085; D2 all 0.01.
    assert by_q["mean_return"].to_list() == pytest.approx(
        [(0.005 + 0.01) / 2, (0.025 + 0.01) / 2, (0.045 + 0.01) / 2, (0.065 + 0.01) / 2,
         (0.085 + 0.01) / 2])
    spread = metrics.spread_series(daily, 5)
    assert spread["spread"].to_list() == pytest.approx([0.08, 0.0])
    turnover = metrics.quantile_turnover(q, 5)
    # Top on D1 = {I, J}; on D2 = {A, J}: one of two names is new.
    assert turnover.to_dicts() == [{"date": D2, "turnover": 0.5}]


def test_probable_leakage():
    assert metrics.probable_leakage(0.35, 0.1)
    assert metrics.probable_leakage(-0.35, 0.1)
    assert not metrics.probable_leakage(0.04, 0.1)
    assert not metrics.probable_leakage(None, 0.1)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(-1000, 1000), st.floats(-1, 1)), min_size=3, max_size=30,
                unique_by=lambda t: t[0]))
def test_rank_ic_invariant_under_monotone_transform(pairs):
    rows = [(D1, f"S{i}", float(x), y) for i, (x, y) in enumerate(pairs)]
    base = metrics.information_coefficient(frame(rows), method="spearman")["ic"][0]
    moved = [(d, s, x**3 / 7 + 5, y) for d, s, x, y in rows]
    again = metrics.information_coefficient(frame(moved), method="spearman")["ic"][0]
    if base is None:
        assert again is None
    else:
        assert -1 - 1e-9 <= base <= 1 + 1e-9
        assert again == pytest.approx(base, abs=1e-9)
