"""Minute bars consistent with daily bars: what the emulator streams and serves intraday.

For each daily bar (symbol, date, open, high, low, close, volume, trade_count) the
session's minutes (09:30 New York to the close, 13:00 on half days) get a path that:
- opens at the day's open and closes at its close (a Brownian bridge in log price between
  them, with the day's range as its scale), kept inside [low, high];
- touches the day's high in the minute of its highest close and the low in the minute of
  its lowest close, so the minutes' max high and min low are the day's high and low;
- splits the day's volume and trade count with a U-shaped intraday profile, the remainder
  in the last minute, so they sum to the day's. A minute left without volume has no bar,
  as on Alpaca (no eligible trade, no bar).
Deterministic for a seed: each (symbol, date) draws from its own stream.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from aurora.calendar import session_close_utc

NEW_YORK = ZoneInfo("America/New_York")
OPEN = dt.time(9, 30)
WICK = 0.0005  # a minute's high and low beyond its open and close, as a fraction

MINUTE_SCHEMA = {"timestamp": pl.Datetime("us", "UTC"), "symbol": pl.String,
                 "open": pl.Float64, "high": pl.Float64, "low": pl.Float64,
                 "close": pl.Float64, "volume": pl.Float64, "trade_count": pl.Int64,
                 "vwap": pl.Float64}


def session_minutes(day: dt.date) -> list[dt.datetime]:
    """The UTC start of every minute of the session of `day`."""
    start = dt.datetime.combine(day, OPEN, tzinfo=NEW_YORK).astimezone(dt.UTC)
    count = int((session_close_utc(day) - start).total_seconds() // 60)
    return [start + dt.timedelta(minutes=k) for k in range(count)]


def _rng(seed: int, symbol: str, day: dt.date) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}|{symbol}|{day.isoformat()}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def day_minutes(symbol: str, day: dt.date, o: float, h: float, low: float, c: float,
                volume: float, trades: int, seed: int = 0) -> list[tuple]:
    """The minute bars of one daily bar (rows in MINUTE_SCHEMA order)."""
    times = session_minutes(day)
    n = len(times)
    rng = _rng(seed, symbol, day)
    steps = rng.standard_normal(n)
    walk = np.concatenate([[0.0], np.cumsum(steps)])
    bridge = walk - np.linspace(0.0, 1.0, n + 1) * walk[-1]  # 0 at both ends
    spread = max(np.log(h) - np.log(low), 1e-9)
    scale = spread / 4 / max(np.abs(bridge).max(), 1e-12)
    path = np.exp(np.linspace(np.log(o), np.log(c), n + 1) + scale * bridge)
    path = np.clip(path, low, h)
    path[0], path[-1] = o, c
    opens, closes = path[:-1].copy(), path[1:]
    x = np.linspace(-1.0, 1.0, n)
    profile = (1 + 2 * x ** 2) / (1 + 2 * x ** 2).sum()
    vols = np.floor(volume * profile)
    vols[-1] += volume - vols.sum()
    counts = np.floor(trades * profile).astype(np.int64)
    counts[-1] += trades - counts.sum()
    traded = vols > 0
    if not traded.any():
        return []
    wick = 1 + WICK * rng.random(n)
    highs = np.minimum(np.maximum(opens, closes) * wick, h)
    lows = np.maximum(np.minimum(opens, closes) / wick, low)
    # the first bar opens at the day's open (a minute with no trade has no bar), and the
    # day's extremes fall in minutes that have a bar
    first = int(np.argmax(traded))
    opens[first] = o
    highs[first] = max(highs[first], o)
    lows[first] = min(lows[first], o)
    highs[int(np.argmax(np.where(traded, closes, -np.inf)))] = h
    lows[int(np.argmin(np.where(traded, closes, np.inf)))] = low
    # a minute with volume had at least one trade; the rest follow the profile
    if trades >= traded.sum():
        rest = trades - int(traded.sum())
        weights = np.where(traded, profile, 0.0) / profile[traded].sum()
        counts = traded.astype(np.int64) + np.floor(rest * weights).astype(np.int64)
        counts[np.flatnonzero(traded)[-1]] += trades - counts.sum()
    rows = []
    for k in range(n):
        if vols[k] <= 0:
            continue
        rows.append((times[k], symbol, float(opens[k]), float(highs[k]), float(lows[k]),
                     float(closes[k]), float(vols[k]), int(counts[k]),
                     float((opens[k] + highs[k] + lows[k] + closes[k]) / 4)))
    return rows


def minute_bars(daily: pl.DataFrame, seed: int = 0) -> pl.DataFrame:
    """Minute bars for every row of `daily` (date, symbol, open, high, low, close, volume,
    trade_count), sorted by symbol then timestamp (MINUTE_SCHEMA)."""
    rows: list[tuple] = []
    for r in daily.sort("symbol", "date").iter_rows(named=True):
        rows += day_minutes(r["symbol"], r["date"], r["open"], r["high"], r["low"],
                            r["close"], float(r["volume"]), int(r["trade_count"] or 0),
                            seed)
    return pl.DataFrame(rows, schema=MINUTE_SCHEMA, orient="row")
