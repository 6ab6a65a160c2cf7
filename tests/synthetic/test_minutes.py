"""Minute bars from daily bars: each day's minutes agree with its bar exactly."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from aurora_testbed.synthetic.minutes import minute_bars, session_minutes

DAILY = pl.DataFrame({
    "date": [dt.date(2024, 7, 2), dt.date(2024, 7, 3), dt.date(2024, 7, 2)],
    "symbol": ["AAPL", "AAPL", "XOM"],
    "open": [100.0, 101.0, 50.0], "high": [103.0, 102.0, 50.5],
    "low": [99.0, 100.5, 48.0], "close": [101.0, 101.5, 48.2],
    "volume": [2_000_000.0, 900_000.0, 750_000.0], "trade_count": [20_000, 9_000, 7_000]})


def test_session_minutes_know_the_half_day():
    full = session_minutes(dt.date(2024, 7, 2))
    half = session_minutes(dt.date(2024, 7, 3))  # closes at 13:00 New York
    assert len(full) == 390 and len(half) == 210
    assert full[0] == dt.datetime(2024, 7, 2, 13, 30, tzinfo=dt.UTC)  # 09:30 EDT
    assert full[-1] == dt.datetime(2024, 7, 2, 19, 59, tzinfo=dt.UTC)


def test_each_days_minutes_aggregate_to_its_daily_bar():
    minutes = minute_bars(DAILY, seed=3)
    day = minutes.with_columns(date=pl.col("timestamp").dt.convert_time_zone(
        "America/New_York").dt.date()).group_by("symbol", "date").agg(
        open=pl.col("open").first(), high=pl.col("high").max(), low=pl.col("low").min(),
        close=pl.col("close").last(), volume=pl.col("volume").sum(),
        trade_count=pl.col("trade_count").sum(), minutes=pl.len())
    got = day.sort("symbol", "date")
    want = DAILY.sort("symbol", "date")
    for column in ("open", "high", "low", "close", "volume", "trade_count"):
        assert got[column].to_list() == pytest.approx(want[column].to_list()), column
    assert got["minutes"].to_list() == [390, 210, 390]
    assert (minutes["high"] >= minutes[["open", "close"]].max_horizontal()).all()
    assert (minutes["low"] <= minutes[["open", "close"]].min_horizontal()).all()
    assert ((minutes["trade_count"] >= 1) | (minutes["volume"] == 0)).all()
    assert minutes.equals(minute_bars(DAILY, seed=3))  # deterministic
    assert not minutes.equals(minute_bars(DAILY, seed=4))


def test_a_thin_day_has_fewer_minute_bars_but_still_its_totals():
    thin = DAILY.head(1).with_columns(volume=pl.lit(150.0), trade_count=pl.lit(3))
    minutes = minute_bars(thin)
    assert 0 < minutes.height < 390  # minutes without volume have no bar
    assert minutes["volume"].sum() == 150.0 and minutes["trade_count"].sum() == 3
    assert minutes["high"].max() == 103.0 and minutes["low"].min() == 99.0
    assert minutes["open"][0] == 100.0  # the first bar opens at the day's open
