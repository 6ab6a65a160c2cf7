"""Seed-named features on a hand-built panel whose answers are known in closed form.

Three symbols whose daily returns are 1x, 2x and 3x a repeating 5-session cycle
x = (+1%, -1%, +2%, 0%, -2%). Hence the equal-weight market return is 2x, the betas are
exactly 0.5, 1 and 1.5, market-neutral returns are 0, 5-session vols are s, 2s, 3s with
s = std(cycle), and their cross-sectional z-scores are -1, 0, 1.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest

from aurora.calendar import sessions
from aurora.features.compute import compute_features
from aurora.features.registry import MAX_LOOKBACK

CYCLE = np.array([0.01, -0.01, 0.02, 0.0, -0.02])
N = MAX_LOOKBACK + 12
SECTORS = {"A": "X", "B": "X", "C": "Y"}


@pytest.fixture(scope="module")
def built():
    days = sessions(dt.date(2021, 1, 4), dt.date(2023, 1, 1))[:N]
    x = np.resize(CYCLE, N)
    x[0] = 0.0
    frames = []
    for k, sym in enumerate("ABC", start=1):
        close = 100.0 * np.cumprod(1 + k * x)
        volume = np.full(N, 1000.0 * k)
        volume[-1] = 3001.0 * k
        frames.append(pl.DataFrame({"date": days, "symbol": sym, "open": close, "high": close,
                                    "low": close, "close": close, "volume": volume}))
    prices = pl.concat(frames)
    out = compute_features(prices, sectors=SECTORS, fundamentals=None)
    return prices, out, x


def last(out: pl.DataFrame, name: str) -> list[float]:
    day = out["date"].max()
    return out.filter(pl.col("date") == day).sort("symbol")[name].to_list()


def test_rows_emitted_only_after_warmup(built):
    prices, out, _ = built
    assert out.height == 3 * (N - MAX_LOOKBACK)
    assert out["date"].min() == sorted(prices["date"].unique())[MAX_LOOKBACK]


def test_ret_1d_is_simple_close_to_close(built):
    _, out, x = built
    assert last(out, "f_ret_1d") == pytest.approx([x[-1], 2 * x[-1], 3 * x[-1]], abs=1e-14)


def test_vol_5d_is_sample_std_of_last_5_returns(built):
    _, out, _ = built
    s = float(np.std(CYCLE, ddof=1))
    assert last(out, "f_vol_5d") == pytest.approx([s, 2 * s, 3 * s], rel=1e-10)


def test_cs_rank_ret_is_percentile_rank(built):
    _, out, _ = built
    day = out.filter(pl.col("f_ret_1d").abs() > 0)["date"].max()
    row = out.filter(pl.col("date") == day).sort("symbol")
    sign = np.sign(row["f_ret_1d"][0])
    expected = [1 / 3, 2 / 3, 1.0] if sign > 0 else [1.0, 2 / 3, 1 / 3]
    assert row["f_cs_rank_ret"].to_list() == pytest.approx(expected)


def test_cs_zscore_vol(built):
    _, out, _ = built
    assert last(out, "f_cs_zscore_vol") == pytest.approx([-1.0, 0.0, 1.0], abs=1e-9)


def test_volume_surprise(built):
    _, out, _ = built
    expected = [math.log((3001.0 * k + 1) / (1000.0 * k + 1)) for k in (1, 2, 3)]
    assert last(out, "f_volume_surprise") == pytest.approx(expected, rel=1e-12)


def test_amihud_is_scaled_per_million_dollars(built):
    prices, out, _ = built
    a = prices.filter(pl.col("symbol") == "A")
    close, vol = a["close"].to_numpy(), a["volume"].to_numpy()
    r = close[1:] / close[:-1] - 1
    expected = 1e6 * np.mean(np.abs(r[-20:]) / (close[-20:] * vol[-20:]))
    assert last(out, "f_amihud_illiquidity")[0] == pytest.approx(expected, rel=1e-12)


def test_market_neutral_return_and_beta(built):
    _, out, _ = built
    assert last(out, "f_beta_mkt_60d") == pytest.approx([0.5, 1.0, 1.5], rel=1e-9)
    assert last(out, "f_ret_market_neutral") == pytest.approx([0.0, 0.0, 0.0], abs=1e-12)
    assert last(out, "f_idio_share_60d") == pytest.approx([0.0, 0.0, 0.0], abs=1e-9)


def test_vol_sector_neutral(built):
    _, out, _ = built
    s20 = math.sqrt(np.sum(np.resize(CYCLE, 20) ** 2) / 19)
    assert last(out, "f_vol_20d") == pytest.approx([s20, 2 * s20, 3 * s20], rel=1e-10)
    assert last(out, "f_vol_sector_neutral") == pytest.approx([-0.5 * s20, 0.5 * s20, 0.0],
                                                              abs=1e-12)


def test_split_free_adjusted_prices_show_no_split_return():
    """A 2-for-1 split, back-adjusted, is not a -50% return."""
    from aurora.adjustments import adjust_bars

    days = sessions(dt.date(2021, 1, 4), dt.date(2023, 1, 1))[:N]
    raw_close = np.where(np.arange(N) < N - 5, 100.0, 50.0)
    bars = pl.DataFrame({"date": days, "symbol": "A", "open": raw_close, "high": raw_close,
                         "low": raw_close, "close": raw_close, "volume": 1000.0})
    bars = pl.concat([bars, bars.with_columns(pl.lit("B").alias("symbol"),
                                              pl.col("close") * 0 + 80.0)])
    actions = pl.DataFrame({"id": ["s1"], "action_type": ["forward_split"], "symbol": ["A"],
                            "old_symbol": [None], "ex_date": [days[N - 5]],
                            "process_date": [days[N - 5]], "old_rate": [1.0], "new_rate": [2.0],
                            "cash_rate": [None]},
                           schema_overrides={"old_symbol": pl.String, "cash_rate": pl.Float64})
    adjusted = adjust_bars(bars, actions, mode="all")
    out = compute_features(adjusted, sectors={"A": "X", "B": "X"})
    assert out.filter(pl.col("symbol") == "A")["f_ret_1d"].abs().max() == pytest.approx(0.0)


def test_a_feature_on_a_field_the_prices_lack_is_refused_by_name(built):
    from aurora.features import Mean, vwap

    prices, _, _ = built
    with pytest.raises(ValueError, match=r"^f_vwap_5: uses vwap, which these prices do not"):
        compute_features(prices, sectors=SECTORS, extra={"f_vwap_5": Mean(vwap, 5)})
