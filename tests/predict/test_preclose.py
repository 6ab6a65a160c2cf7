"""The pre-close features: a partial bar equal to the day's bar gives the day's close-to-close
features; minutes after the cut are never read; the partial bar follows splits."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import replace

import polars as pl
import pytest

from aurora.adjustments import point_in_time
from aurora.calendar import sessions
from aurora.features.builder import BuildInputs, FeatureSet
from aurora.features.compute import compute_features
from aurora.intraday.daily import daily_fields, with_intraday
from aurora.predict.preclose import (
    adjust_partial,
    as_decision_rows,
    cut_fields,
    cut_instant,
    partial_bars,
    preclose_features,
)
from aurora_testbed.synthetic import generate_market
from aurora_testbed.synthetic.minutes import minute_bars

SYMBOLS = ["AAPL", "MSFT", "XOM", "JPM", "KO", "PFE"]
START, END = dt.date(2022, 1, 3), dt.date(2023, 6, 30)
DAYS = sessions(dt.date(2023, 6, 26), END)


@pytest.fixture(scope="module")
def market():
    return generate_market(SYMBOLS, START, END, seed=11)


@pytest.fixture(scope="module")
def inputs(market) -> BuildInputs:
    adjusted = point_in_time(market.bars, market.corporate_actions)
    return BuildInputs("v", adjusted, None, None, market.corporate_actions, "raw", {}, [], "")


def intraday(market, days) -> pl.DataFrame:
    daily = market.bars.filter(pl.col("date").is_in(days))
    return minute_bars(daily, 0).with_columns(
        date=pl.col("timestamp").dt.convert_time_zone("America/New_York").dt.date())


def test_a_partial_bar_equal_to_the_days_bar_gives_the_close_to_close_features(market,
                                                                               inputs):
    raw_today = market.bars.filter(pl.col("date").is_in(DAYS))
    partial = adjust_partial(raw_today, inputs.prices, market.bars, market.corporate_actions)
    got = preclose_features(inputs, partial, DAYS, features=FeatureSet())
    full = compute_features(inputs.prices, sectors=None, actions=market.corporate_actions)
    want = full.filter(pl.col("date").is_in(DAYS)).sort("symbol", "date")
    assert got.height == len(SYMBOLS) * len(DAYS)
    for name in (c for c in want.columns if c.startswith("f_")):
        assert got[name].to_numpy() == pytest.approx(want[name].to_numpy(), rel=1e-9,
                                                     abs=1e-12, nan_ok=True), name


def test_the_partial_bar_reads_only_minutes_ended_by_the_cut(market):
    minutes = intraday(market, DAYS[-1:])
    bars = partial_bars(minutes, dt.time(15, 45))
    cut = cut_instant(DAYS[-1], dt.time(15, 45))
    assert cut == dt.datetime(2023, 6, 30, 19, 45, tzinfo=dt.UTC)
    before = minutes.filter(pl.col("timestamp") < dt.datetime(2023, 6, 30, 19, 45,
                                                              tzinfo=dt.UTC))
    aapl = before.filter(pl.col("symbol") == "AAPL")
    row = bars.filter(pl.col("symbol") == "AAPL").row(0, named=True)
    assert row["close"] == aapl["close"][-1] and row["volume"] == aapl["volume"].sum()
    assert row["high"] == aapl["high"].max() and row["open"] == aapl["open"][0]
    later = minutes.with_columns(
        pl.when(pl.col("timestamp") >= cut).then(pl.col(c) * 3).otherwise(pl.col(c))
        .alias(c) for c in ("open", "high", "low", "close", "volume"))
    assert partial_bars(later, dt.time(15, 45)).equals(bars)
    # a half day's cut is 15 minutes before its 13:00 close
    assert cut_instant(dt.date(2023, 11, 24), dt.time(15, 45)) == dt.datetime(
        2023, 11, 24, 17, 45, tzinfo=dt.UTC)


def test_a_split_going_ex_today_is_applied_to_the_partial_bar(inputs, market):
    day = DAYS[-1]
    prior = market.bars.filter(pl.col("date") < day)
    last = prior.filter(pl.col("symbol") == "AAPL").tail(1).row(0, named=True)
    partial = pl.DataFrame({"date": [day], "symbol": ["AAPL"],
                            "open": [last["close"] / 2], "high": [last["close"] / 2 * 1.01],
                            "low": [last["close"] / 2 * 0.99], "close": [last["close"] / 2],
                            "volume": [2 * last["volume"]], "vwap": [last["close"] / 2],
                            "trade_count": [10]})
    split = pl.DataFrame({"id": ["s"], "action_type": ["forward_split"], "symbol": ["AAPL"],
                          "ex_date": [day], "old_rate": [1.0], "new_rate": [2.0]})
    adjusted = adjust_partial(partial, inputs.prices, market.bars, split)
    prev = inputs.prices.filter((pl.col("symbol") == "AAPL") & (pl.col("date") < day)).tail(1)
    assert adjusted["close"][0] == pytest.approx(prev["close"][0])  # no move through a split
    assert adjusted["volume"][0] == pytest.approx(prev["volume"][0])
    assert adjusted["dollar_volume"][0] == pytest.approx(last["close"] * last["volume"])


def test_pre_close_rows_sit_on_the_session_before_their_day():
    rows = pl.DataFrame({"date": [dt.date(2024, 3, 4), dt.date(2024, 3, 1)],
                         "symbol": ["A", "B"], "f_x": [1.0, 2.0]})
    assert as_decision_rows(rows)["date"].to_list() == [dt.date(2024, 3, 1),
                                                          dt.date(2024, 2, 29)]


def test_the_intraday_family_before_the_close_reads_the_minutes_to_the_cut_only(market,
                                                                               inputs):
    """History days carry their full-day intraday fields, today its fields to the cut:
    the pre-close row equals them (and the 20-day realised volatility mixes both), and
    minutes after the cut change nothing."""
    cut = dt.time(15, 45)
    day = DAYS[-1]
    history_days = sessions(dt.date(2023, 5, 1), DAYS[-2])
    with_history = replace(inputs, intraday=daily_fields(intraday(market, history_days)))
    today = intraday(market, [day])
    features = FeatureSet(intraday=True)

    def rows(minutes: pl.DataFrame) -> pl.DataFrame:
        partial = adjust_partial(partial_bars(minutes, cut), inputs.prices, market.bars,
                                 market.corporate_actions)
        partial = with_intraday(partial, cut_fields(minutes, cut))
        return preclose_features(with_history, partial, [day], features=features)

    got = rows(today)
    assert got.height == len(SYMBOLS) and "f_rv_5min_20d" in got.columns
    at_cut = cut_fields(today, cut).sort("symbol")
    assert got["f_ret_last_30min"].to_list() == at_cut["intraday_ret_last_30min"].to_list()
    assert got["f_close_vwap_gap"].to_list() == at_cut["intraday_close_vwap_gap"].to_list()
    full_day = daily_fields(today).sort("symbol")
    assert got["f_ret_last_30min"].to_list() != full_day["intraday_ret_last_30min"].to_list()
    past = with_history.intraday.filter(pl.col("date") >= history_days[-19])
    aapl = past.filter(pl.col("symbol") == "AAPL")["intraday_rv_5min"].to_list()
    aapl.append(at_cut.filter(pl.col("symbol") == "AAPL")["intraday_rv_5min"][0])
    want = math.sqrt(sum(aapl) / 20)
    assert got.filter(pl.col("symbol") == "AAPL")["f_rv_5min_20d"][0] == pytest.approx(
        want, rel=1e-12)
    when = cut_instant(day, cut)
    later = today.with_columns(
        pl.when(pl.col("timestamp") >= when).then(pl.col(c) * 3).otherwise(pl.col(c))
        .alias(c) for c in ("open", "high", "low", "close", "volume", "vwap"))
    assert rows(later).equals(got)
