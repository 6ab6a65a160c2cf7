"""The report's numbers (`aurora.report.data`) on tiny hand-built frames with known answers."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from aurora import calendar
from aurora.report import data

JAN = calendar.sessions(dt.date(2024, 1, 1), dt.date(2024, 1, 31))  # 21 sessions
FEB = calendar.sessions(dt.date(2024, 2, 1), dt.date(2024, 2, 29))  # 20 sessions


def test_coverage_counts_gaps_between_a_symbols_first_and_last_bar_only():
    bars = pl.DataFrame({
        "date": [*JAN, *FEB[:5], *JAN[:7], *FEB, *JAN[10:], *JAN[:10], *JAN[15:]],
        "symbol": ["A"] * 26 + ["B"] * 27 + ["E"] * 11 + ["G"] * 16})
    got = {(r["symbol"], r["month"].month): r["share"] for r in data.coverage(bars).to_dicts()}
    assert len(JAN) == 21 and len(FEB) == 20
    assert got == {
        ("A", 1): 1.0, ("A", 2): 1.0,  # delisted after FEB[4]: February is whole to then
        ("B", 1): pytest.approx(7 / 21), ("B", 2): 1.0,  # 14 January sessions missing
        ("E", 1): 1.0,  # listed on JAN[10]: no gap
        ("G", 1): pytest.approx(16 / 21)}  # 5 sessions missing mid-month


def test_missing_share_counts_nulls_and_nans_per_month():
    features = pl.DataFrame({"date": [JAN[0], JAN[1], FEB[0], FEB[1]], "symbol": ["A"] * 4,
                             "f_x": [1.0, None, float("nan"), float("nan")]})
    got = data.missing_share(features, ["f_x"])
    assert got["share"].to_list() == [0.5, 1.0]


def test_dispersion_is_relative_to_the_features_usual_daily_std():
    rows = []
    for day, spread in [(JAN[0], 1.0), (JAN[1], 1.0), (FEB[0], 3.0), (FEB[1], 3.0)]:
        rows += [(day, "A", -spread), (day, "B", spread)]
    features = pl.DataFrame(rows, schema={"date": pl.Date, "symbol": pl.String,
                                          "f_x": pl.Float64}, orient="row")
    got = data.dispersion(features, ["f_x"])  # daily std sqrt(2) and 3 sqrt(2); median 2 sqrt(2)
    assert got["ratio"].to_list() == pytest.approx([0.5, 1.5])


def test_psi_is_zero_for_the_same_sample_and_large_for_a_shifted_one():
    rng = np.random.default_rng(0)
    base = rng.normal(size=5000)
    assert data.psi(base, base) == pytest.approx(0.0)
    assert data.psi(base, rng.normal(size=5000)) < 0.02
    assert data.psi(base, base + 1.0) > 0.25
    assert data.psi(base, np.array([np.nan])) is None
    # hand-computed: all the recent values in the top bin of two
    assert data.psi(np.array([0.0, 1.0, 2.0, 3.0]), np.array([3.0, 3.0]), bins=2) == \
        pytest.approx((1 - 0.5) * np.log(1 / 0.5) + (1e-4 - 0.5) * np.log(1e-4 / 0.5))


def _prices(days, closes: dict[str, list[float]]) -> pl.DataFrame:
    return pl.DataFrame([(d, s, c) for s, cs in closes.items() for d, c in zip(days, cs,
                                                                             strict=True)],
                        schema={"date": pl.Date, "symbol": pl.String, "close": pl.Float64},
                        orient="row")


def test_ic_by_horizon_uses_the_labels_from_the_decision_dates_close():
    days = JAN[:12]
    # A rises, B is flat, C falls, every session: ranks of every horizon's return agree
    prices = _prices(days, {"A": [100 * 1.01 ** i for i in range(12)], "B": [50.0] * 12,
                            "C": [80 * 0.99 ** i for i in range(12)]})
    scores = pl.DataFrame([(d, s, v) for d in days[:6] for s, v in
                           (("A", 3.0), ("B", 2.0), ("C", 1.0))],
                          schema={"date": pl.Date, "symbol": pl.String, "score": pl.Float64},
                          orient="row")
    got = data.ic_by_horizon(scores, prices, horizons=(1, 5))
    assert got["rank_ic"].to_list() == pytest.approx([1.0, 1.0])
    # horizon 5 from the decision date (feature date + 1): feature dates up to days[5]
    assert got["dates"].to_list() == [6, 6]
    reversed_scores = scores.with_columns(score=-pl.col("score"))
    assert data.ic_by_horizon(reversed_scores, prices, horizons=(1,))["rank_ic"][0] == \
        pytest.approx(-1.0)


def test_cumulative_quantile_returns_compound_one_session_returns():
    days = JAN[:4]
    prices = _prices(days, {"A": [100.0, 110.0, 121.0, 121.0], "B": [100.0, 100.0, 90.0,
                                                                     90.0]})
    scores = pl.DataFrame({"date": [days[0], days[0], days[1], days[1]],
                           "symbol": ["A", "B", "A", "B"], "score": [1.0, 0.0, 1.0, 0.0]})
    got = data.cumulative_quantile_returns(scores, prices, quantiles=2)
    top = got.filter(pl.col("quantile") == 2)["cumulative"].to_list()
    bottom = got.filter(pl.col("quantile") == 1)["cumulative"].to_list()
    # feature date days[0] earns days[1] -> days[2]; days[1] earns days[2] -> days[3]
    assert top == pytest.approx([0.1, 0.1])
    assert bottom == pytest.approx([-0.1, -0.1])


def test_ic_by_sector_and_quantile_means():
    days = JAN[:3]
    oos = pl.DataFrame([(d, s, sc, lab) for d in days for s, sc, lab in
                        (("A", 1.0, 0.01), ("B", 2.0, 0.02), ("C", 3.0, 0.03),
                         ("D", 1.0, 0.03), ("E", 2.0, 0.02), ("F", 3.0, 0.01),
                         ("G", 2.0, 0.0))],
                       schema={"date": pl.Date, "symbol": pl.String, "score": pl.Float64,
                               "label": pl.Float64}, orient="row")
    sectors = pl.DataFrame({"symbol": ["A", "B", "C", "D", "E", "F"],
                            "sector": ["Up", "Up", "Up", "Down", "Down", "Down"]})
    got = {r["sector"]: r for r in data.ic_by_sector(oos, sectors, 1).to_dicts()}
    assert got["Up"]["rank_ic"] == pytest.approx(1.0)
    assert got["Down"]["rank_ic"] == pytest.approx(-1.0)
    assert got["Up"]["names"] == 3 and got["unknown"]["names"] == 1  # G has no sector
    assert got["unknown"]["rank_ic"] is None  # one name a day: no correlation
    # 7 names in 3 buckets by (score, symbol): A D B | E G | C F
    means = data.quantile_means(oos, 3)
    assert means["mean_return"].to_list() == pytest.approx([0.02, 0.01, 0.02])
