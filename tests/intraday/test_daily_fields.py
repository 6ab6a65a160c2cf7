"""The daily summaries of intraday bars: tiny hand-built days with known answers, and an
independent pandas computation on random minutes."""

from __future__ import annotations

import datetime as dt
import itertools
import math

import numpy as np
import pandas as pd
import polars as pl
import pytest

from aurora.intraday.daily import (
    FIELDS,
    RET_FIRST,
    RET_LAST,
    RV,
    VOLUME_LAST,
    VWAP_GAP,
    daily_fields,
)
from aurora.predict.preclose import cut_instant
from aurora.schemas import INTRADAY_SCHEMA

DAY = dt.date(2024, 3, 1)  # 09:30 New York = 14:30 UTC
HALF_DAY = dt.date(2024, 11, 29)  # closes 13:00 New York = 18:00 UTC
OPEN = dt.datetime(2024, 3, 1, 14, 30, tzinfo=dt.UTC)


def bars(rows: list[tuple[dt.datetime, float, float, float]], *, day: dt.date = DAY,
         symbol: str = "AAA") -> pl.DataFrame:
    """Bars (timestamp, open, close, volume); high/low around them, vwap the mid."""
    return pl.DataFrame({
        "timestamp": [r[0] for r in rows], "date": [day] * len(rows),
        "symbol": [symbol] * len(rows), "open": [r[1] for r in rows],
        "high": [max(r[1], r[2]) for r in rows], "low": [min(r[1], r[2]) for r in rows],
        "close": [r[2] for r in rows], "volume": [r[3] for r in rows],
        "vwap": [(r[1] + r[2]) / 2 for r in rows], "trade_count": [1] * len(rows),
    }).cast(INTRADAY_SCHEMA).select(list(INTRADAY_SCHEMA))  # type: ignore[arg-type]


def at(minutes: int) -> dt.datetime:
    return OPEN + dt.timedelta(minutes=minutes)


def test_a_hand_built_day_gives_the_known_fields():
    day = bars([
        (at(-30), 90.0, 91.0, 999.0),    # pre-market: never read
        (at(0), 100.0, 101.0, 10.0),     # bucket 0
        (at(4), 101.0, 102.0, 10.0),     # bucket 0: its close ends the first 5 minutes
        (at(29), 102.0, 104.0, 20.0),    # bucket 5, ends 10:00: the first 30 minutes' close
        (at(360), 104.0, 103.0, 30.0),   # 15:30, ends 15:31
        (at(389), 103.0, 106.0, 40.0),   # 15:59, ends 16:00: the last close
        (at(390), 106.0, 50.0, 999.0),   # after-hours: never read
    ])
    row = daily_fields(day).row(0, named=True)
    closes = [102.0, 104.0, 103.0, 106.0]
    returns = [math.log(102 / 100)] + [math.log(b / a) for a, b in
                                       itertools.pairwise(closes)]
    assert row[RV] == pytest.approx(sum(r * r for r in returns), rel=1e-12)
    assert row[RET_FIRST] == pytest.approx(math.log(104 / 100), rel=1e-12)
    # 30 minutes before 16:00 is 15:30: the last bar ending by then is the 10:00 one
    assert row[RET_LAST] == pytest.approx(math.log(106 / 104), rel=1e-12)
    value = 100.5 * 10 + 101.5 * 10 + 103 * 20 + 103.5 * 30 + 104.5 * 40
    assert row[VWAP_GAP] == pytest.approx(math.log(106 / (value / 110)), rel=1e-12)
    # bars starting at or after 15:30 (the last two)
    assert row[VOLUME_LAST] == pytest.approx(70 / 110, rel=1e-12)


def test_the_cut_reads_nothing_after_it_and_moves_the_last_30_minutes():
    rows = [(at(m), 100.0 + m / 100, 100.0 + (m + 1) / 100, 10.0 + m) for m in range(390)]
    day = bars(rows)
    cut = dt.time(15, 45)
    fields = daily_fields(day, end_of=lambda d: cut_instant(d, cut)).row(0, named=True)
    later = day.with_columns(pl.when(pl.col("timestamp") >= at(375)).then(pl.col("close") * 3)
                             .otherwise(pl.col("close")).alias("close"),
                             pl.when(pl.col("timestamp") >= at(375)).then(0.0)
                             .otherwise(pl.col("volume")).alias("volume"))
    assert daily_fields(later, end_of=lambda d: cut_instant(d, cut)).row(0, named=True) == fields
    # the last bar read is 15:44 (ends 15:45); 30 minutes before: the bar ending 15:15
    assert fields[RET_LAST] == pytest.approx(math.log((100 + 375 / 100) / (100 + 345 / 100)))
    share = sum(10.0 + m for m in range(345, 375)) / sum(10.0 + m for m in range(375))
    assert fields[VOLUME_LAST] == pytest.approx(share, rel=1e-12)


def test_a_half_day_ends_at_its_early_close():
    open_ = dt.datetime(2024, 11, 29, 14, 30, tzinfo=dt.UTC)
    rows = [(open_ + dt.timedelta(minutes=m), 50.0, 50.0 + m / 10, 1.0) for m in range(240)]
    row = daily_fields(bars(rows, day=HALF_DAY)).row(0, named=True)
    # the session ends 13:00 New York (210 minutes): the last close is the 12:59 bar's
    assert row[RET_LAST] == pytest.approx(math.log((50 + 20.9) / (50 + 17.9)), rel=1e-12)
    assert row[VOLUME_LAST] == pytest.approx(30 / 210, rel=1e-12)


def test_missing_bars_give_nulls_not_guesses():
    late_only = bars([(at(200), 10.0, 11.0, 5.0)])
    row = daily_fields(late_only).row(0, named=True)
    assert row[RET_FIRST] is None and row[RV] is None
    # no trade in the last 30 minutes: the price has not moved since the 12:50 bar
    assert row[RET_LAST] == 0.0 and row[VOLUME_LAST] == 0.0
    silent = bars([(at(0), 10.0, 11.0, 0.0), (at(10), 11.0, 12.0, 0.0)])
    row = daily_fields(silent).row(0, named=True)
    assert row[VWAP_GAP] is None and row[VOLUME_LAST] is None
    assert row[RV] == pytest.approx(math.log(1.1) ** 2 + math.log(12 / 11) ** 2)
    assert daily_fields(bars([])).columns == ["date", "symbol", *FIELDS]


def test_five_minute_bars_give_the_returns_of_their_closes():
    rows = [(at(5 * k), 100.0 + k, 101.0 + k, 1.0) for k in range(78)]
    row = daily_fields(bars(rows), bar_minutes=5).row(0, named=True)
    closes = [101.0 + k for k in range(78)]
    expected = math.log(101 / 100) ** 2 + sum(math.log(b / a) ** 2 for a, b in
                                              itertools.pairwise(closes))
    assert row[RV] == pytest.approx(expected, rel=1e-12)
    assert row[RET_FIRST] == pytest.approx(math.log(106 / 100), rel=1e-12)
    with pytest.raises(ValueError, match="1- or 5-minute"):
        daily_fields(bars(rows), bar_minutes=15)


def _pandas_fields(frame: pd.DataFrame) -> pd.DataFrame:
    """An independent computation of the fields (full session, 1-minute bars)."""
    out = []
    for (symbol, day), g in frame.groupby(["symbol", "date"]):
        open_ = pd.Timestamp(dt.datetime.combine(day, dt.time(9, 30)), tz="America/New_York")
        close = open_ + pd.Timedelta(minutes=390)
        ends = g["timestamp"] + pd.Timedelta(minutes=1)
        g = g[(g["timestamp"] >= open_) & (ends <= close)].sort_values("timestamp")
        ends = g["timestamp"] + pd.Timedelta(minutes=1)
        bucket = ((g["timestamp"] - open_).dt.total_seconds() // 300).astype(int)
        closes = g.groupby(bucket)["close"].last()
        prices = np.concatenate([[g["open"].iloc[0]], closes.to_numpy()])
        r = np.diff(np.log(prices))
        first = g.loc[ends <= open_ + pd.Timedelta(minutes=30), "close"]
        before = g.loc[ends <= close - pd.Timedelta(minutes=30), "close"]
        last = g["close"].iloc[-1]
        vwap = (g["vwap"] * g["volume"]).sum() / g["volume"].sum()
        late = g.loc[g["timestamp"] >= close - pd.Timedelta(minutes=30), "volume"].sum()
        out.append({"symbol": symbol, "date": day, RV: float((r ** 2).sum()),
                    RET_FIRST: math.log(first.iloc[-1] / g["open"].iloc[0]),
                    RET_LAST: math.log(last / before.iloc[-1]),
                    VWAP_GAP: math.log(last / vwap), VOLUME_LAST: late / g["volume"].sum()})
    return pd.DataFrame(out)


def test_random_minutes_with_gaps_match_an_independent_pandas_computation():
    rng = np.random.default_rng(3)
    frames = []
    for day in (DAY, dt.date(2024, 3, 4)):
        for symbol in ("AAA", "BBB"):
            open_ = dt.datetime.combine(day, dt.time(14, 30), dt.UTC)
            minutes = np.sort(rng.choice(np.arange(-60, 420), size=300, replace=False))
            minutes = np.union1d(minutes, [0, 1, 380])  # the first and last half hours traded
            price = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, len(minutes))))
            rows = [(open_ + dt.timedelta(minutes=int(m)), float(p), float(p * 1.0005),
                     float(rng.integers(1, 1000))) for m, p in zip(minutes, price, strict=True)]
            frames.append(bars(rows, day=day, symbol=symbol))
    minutes = pl.concat(frames)
    got = daily_fields(minutes).to_pandas()
    want = _pandas_fields(minutes.to_pandas())
    assert len(got) == 4
    for name in FIELDS:
        np.testing.assert_allclose(got[name].to_numpy(), want[name].to_numpy(), rtol=1e-12)
