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
With `extended=True`, sparse extended-hours bars are added, as Alpaca's intraday bars
have them: from 04:00 to the open and from the close to 20:00 New York, about one minute
in ten, each with a few hundred shares at a price near the day's open (before) or close
(after). They are outside the daily bar: its open, high, low, close and volume are the
regular session's.
Deterministic for a seed: each (symbol, date) draws from its own stream. Days are
generated together as (days x minutes) arrays, one group per session length.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from aurora.calendar import session_minute_count, session_open_utc

NEW_YORK = ZoneInfo("America/New_York")
WICK = 0.0005  # a minute's high and low beyond its open and close, as a fraction
EXTENDED_START = dt.time(4, 0)
EXTENDED_END = dt.time(20, 0)
EXTENDED_TRADE_ODDS = 0.1  # share of extended-hours minutes with a bar

MINUTE_SCHEMA = {"timestamp": pl.Datetime("us", "UTC"), "symbol": pl.String,
                 "open": pl.Float64, "high": pl.Float64, "low": pl.Float64,
                 "close": pl.Float64, "volume": pl.Float64, "trade_count": pl.Int64,
                 "vwap": pl.Float64}
_MINUTE_US = 60_000_000


def session_minutes(day: dt.date) -> list[dt.datetime]:
    """The UTC start of every minute of the session of `day`."""
    start = session_open_utc(day)
    return [start + dt.timedelta(minutes=k) for k in range(session_minute_count(day))]


def _rng(seed: int, symbol: str, day: dt.date) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}|{symbol}|{day.isoformat()}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _epoch_us(value: dt.datetime) -> int:
    return int(value.timestamp()) * 1_000_000


def _regular(days: pl.DataFrame, n: int, rngs: list[np.random.Generator]) -> pl.DataFrame:
    """The regular-session minutes of `days` (all with `n` session minutes)."""
    k = days.height
    o, h, low, c = (days.get_column(x).to_numpy().astype(np.float64)[:, None]
                    for x in ("open", "high", "low", "close"))
    volume = days.get_column("volume").to_numpy().astype(np.float64)[:, None]
    trades = days.get_column("trade_count").fill_null(0).to_numpy().astype(np.int64)[:, None]
    steps = np.stack([rng.standard_normal(n) for rng in rngs])
    walk = np.concatenate([np.zeros((k, 1)), np.cumsum(steps, axis=1)], axis=1)
    frac = np.linspace(0.0, 1.0, n + 1)[None, :]
    bridge = walk - frac * walk[:, -1:]  # 0 at both ends
    spread = np.maximum(np.log(h) - np.log(low), 1e-9)
    scale = spread / 4 / np.maximum(np.abs(bridge).max(axis=1, keepdims=True), 1e-12)
    path = np.exp(np.log(o) + frac * (np.log(c) - np.log(o)) + scale * bridge)
    path = np.clip(path, low, h)
    path[:, :1], path[:, -1:] = o, c
    opens, closes = path[:, :-1].copy(), path[:, 1:]
    x = np.linspace(-1.0, 1.0, n)
    profile = ((1 + 2 * x ** 2) / (1 + 2 * x ** 2).sum())[None, :]
    vols = np.floor(volume * profile)
    vols[:, -1] += volume[:, 0] - vols.sum(axis=1)
    traded = vols > 0
    wick = 1 + WICK * np.stack([rng.random(n) for rng in rngs])
    highs = np.minimum(np.maximum(opens, closes) * wick, h)
    lows = np.maximum(np.minimum(opens, closes) / wick, low)
    rows = np.arange(k)
    # the first bar opens at the day's open (a minute with no trade has no bar), and the
    # day's extremes fall in minutes that have a bar
    first = np.argmax(traded, axis=1)
    opens[rows, first] = o[:, 0]
    highs[rows, first] = np.maximum(highs[rows, first], o[:, 0])
    lows[rows, first] = np.minimum(lows[rows, first], o[:, 0])
    highs[rows, np.argmax(np.where(traded, closes, -np.inf), axis=1)] = h[:, 0]
    lows[rows, np.argmin(np.where(traded, closes, np.inf), axis=1)] = low[:, 0]
    counts = _trade_counts(trades, profile, traded)
    stamps = np.array([_epoch_us(session_open_utc(d)) for d in days.get_column("date")],
                      dtype=np.int64)[:, None] + np.arange(n)[None, :] * _MINUTE_US
    symbols = np.repeat(days.get_column("symbol").to_numpy(), n).reshape(k, n)
    keep = traded.ravel()
    frame = {"timestamp": stamps.ravel()[keep], "symbol": symbols.ravel()[keep],
             "open": opens.ravel()[keep], "high": highs.ravel()[keep],
             "low": lows.ravel()[keep], "close": closes.ravel()[keep],
             "volume": vols.ravel()[keep], "trade_count": counts.ravel()[keep]}
    return _frame(frame)


def _trade_counts(trades: np.ndarray, profile: np.ndarray, traded: np.ndarray) -> np.ndarray:
    """Trade counts by the profile summing to `trades`; where a day has at least as many
    trades as traded minutes, every traded minute has at least one."""
    counts = np.floor(trades * profile).astype(np.int64)
    counts[:, -1] += trades[:, 0] - counts.sum(axis=1)
    n_traded = traded.sum(axis=1, keepdims=True)
    enough = (trades >= n_traded) & (n_traded > 0)
    weights = np.where(traded, profile, 0.0)
    weights = weights / np.maximum(weights.sum(axis=1, keepdims=True), 1e-300)
    spread = traded.astype(np.int64) + np.floor((trades - n_traded) * weights).astype(np.int64)
    last = traded.shape[1] - 1 - np.argmax(traded[:, ::-1], axis=1)
    spread[np.arange(len(last)), last] += trades[:, 0] - spread.sum(axis=1)
    return np.where(enough, spread, counts)


def _extended(days: pl.DataFrame, rngs: list[np.random.Generator]) -> pl.DataFrame:
    """Sparse extended-hours bars of `days`: a (days x 960) grid of 04:00-20:00 New York,
    the regular session masked out, about one minute in EXTENDED_TRADE_ODDS traded."""
    k, width = days.height, 16 * 60
    first = np.array([_epoch_us(dt.datetime.combine(d, EXTENDED_START, tzinfo=NEW_YORK))
                      for d in days.get_column("date")], dtype=np.int64)[:, None]
    opening = np.array([_epoch_us(session_open_utc(d)) for d in days.get_column("date")],
                       dtype=np.int64)[:, None]
    closing = opening + days.get_column("_n").to_numpy()[:, None] * _MINUTE_US
    stamps = first + np.arange(width)[None, :] * _MINUTE_US
    draws = np.stack([rng.random(2 * width) for rng in rngs])
    before = stamps < opening
    hit = (draws[:, :width] < EXTENDED_TRADE_ODDS) & (before | (stamps >= closing))
    anchor = np.where(before, days.get_column("open").to_numpy()[:, None],
                      days.get_column("close").to_numpy()[:, None])
    price = anchor * (1 + 0.002 * (draws[:, width:] - 0.5))
    symbols = np.repeat(days.get_column("symbol").to_numpy(), width).reshape(k, width)
    keep = hit.ravel()
    m = int(keep.sum())
    return _frame({"timestamp": stamps.ravel()[keep], "symbol": symbols.ravel()[keep],
                   "open": price.ravel()[keep], "high": price.ravel()[keep] * 1.0002,
                   "low": price.ravel()[keep] / 1.0002, "close": price.ravel()[keep],
                   "volume": np.floor(100 + 400 * draws[:, width:].ravel()[keep]),
                   "trade_count": np.ones(m, dtype=np.int64)})


def _frame(columns: dict[str, np.ndarray]) -> pl.DataFrame:
    frame = pl.DataFrame(columns).with_columns(
        pl.col("timestamp").cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
        pl.col("volume").cast(pl.Float64), pl.col("trade_count").cast(pl.Int64))
    vwap = (pl.col("open") + pl.col("high") + pl.col("low") + pl.col("close")) / 4
    return frame.with_columns(vwap.alias("vwap")).select(list(MINUTE_SCHEMA))


def minute_bars(daily: pl.DataFrame, seed: int = 0, *, extended: bool = False
                ) -> pl.DataFrame:
    """Minute bars for every row of `daily` (date, symbol, open, high, low, close, volume,
    trade_count), sorted by symbol then timestamp (MINUTE_SCHEMA). `extended` adds the
    sparse extended-hours bars (see the module docstring)."""
    if "trade_count" not in daily.columns:
        daily = daily.with_columns(trade_count=pl.lit(0, pl.Int64))
    daily = daily.sort("symbol", "date")
    lengths = [session_minute_count(d) for d in daily.get_column("date")]
    daily = daily.with_columns(_n=pl.Series(lengths, dtype=pl.Int64))
    rngs = [_rng(seed, s, d) for s, d in daily.select("symbol", "date").iter_rows()]
    daily = daily.with_columns(_i=pl.int_range(pl.len()))
    frames = []
    for (n,), days in daily.group_by("_n"):
        picked = [rngs[i] for i in days.get_column("_i")]
        frames.append(_regular(days, int(n), picked))
        if extended:
            frames.append(_extended(days, picked))
    if not frames:
        return pl.DataFrame(schema=MINUTE_SCHEMA)
    return pl.concat(frames).sort("symbol", "timestamp")

