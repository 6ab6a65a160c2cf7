"""The stored minutes of a streamed day against the last daily bar the stream sent.

For each symbol with a streamed daily bar (`market.DailyBar`), the day's minutes held up
to the bar's `as_of` (the latest minute held when it arrived: what it can have seen) are
summed and compared, each field within a relative tolerance of the daily bar's value
(`intraday.volume_tolerance` for the volume, `intraday.price_tolerance` for prices):
- **volume**: the sum of the regular session's minutes (09:30 to the close, 13:00 on half
  days). Some feeds count extended-hours trades in the daily bar: when the regular sum
  disagrees and the daily volume exceeds it, the whole day's minutes (04:00 on, extended
  hours included) are the basis instead, for all three fields;
- **high**: the highest high of the basis; **low**: the lowest low.
Each disagreement is one finding naming the symbol and the field (a report line, not an
error: the minutes are published as they are). Symbols without a streamed daily bar are
not compared.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import polars as pl

from aurora.calendar import session_close_utc, session_open_utc
from aurora.config import IntradayConfig
from aurora.stream.market import DailyBar


def _near(got: float | None, want: float, tolerance: float) -> bool:
    return got is not None and abs(got - want) <= tolerance * abs(want)


def _fmt(value: float | None) -> str:
    return "none" if value is None else f"{value:,.6g}"


def _sums(minutes: pl.DataFrame, bars: pl.DataFrame, opening: dt.datetime,
          close: dt.datetime) -> pl.DataFrame:
    """Per symbol of `bars`: volume, high and low of its minutes held by the bar's `as_of`,
    over the regular session (`r_*`) and the whole day (`w_*`), null without a minute."""
    held = minutes.join(bars.select("symbol", "as_of"), on="symbol").filter(
        pl.col("as_of").is_null() | (pl.col("timestamp") <= pl.col("as_of")))
    regular = pl.col("timestamp").is_between(opening, close, closed="left")
    sums = held.group_by("symbol").agg(
        pl.col("volume").filter(regular).sum().alias("r_volume"),
        pl.col("high").filter(regular).max().alias("r_high"),
        pl.col("low").filter(regular).min().alias("r_low"),
        pl.col("volume").sum().alias("w_volume"), pl.col("high").max().alias("w_high"),
        pl.col("low").min().alias("w_low"))
    return bars.join(sums, on="symbol", how="left").sort("symbol")


def daily_bar_findings(minutes: pl.DataFrame, daily: Mapping[str, DailyBar], day: dt.date,
                       config: IntradayConfig) -> list[str]:
    """One line per (symbol, field) whose stored minutes of `day` (columns timestamp UTC,
    symbol, high, low, volume) disagree with the symbol's last streamed daily bar (module
    docstring), sorted by symbol then field order volume, high, low. One pass over the
    minutes, whatever the universe."""
    if not daily:
        return []
    bars = pl.DataFrame(
        [{"symbol": b.symbol, "as_of": b.as_of, "volume": b.volume, "high": b.high,
          "low": b.low} for b in daily.values()],
        schema={"symbol": pl.String, "as_of": pl.Datetime("us", "UTC"), "volume": pl.Float64,
                "high": pl.Float64, "low": pl.Float64})
    table = _sums(minutes.select("symbol", "timestamp", "volume", "high", "low"), bars,
                  session_open_utc(day), session_close_utc(day))
    findings = []
    for row in table.iter_rows(named=True):
        volume = row["r_volume"] or 0.0
        which, prefix = "regular-session", "r_"
        if not _near(volume, row["volume"], config.volume_tolerance) and row["volume"] > volume:
            which, prefix = "whole-day", "w_"
        got = {"volume": row[f"{prefix}volume"] or 0.0, "high": row[f"{prefix}high"],
               "low": row[f"{prefix}low"]}
        for name, tolerance in (("volume", config.volume_tolerance),
                                ("high", config.price_tolerance),
                                ("low", config.price_tolerance)):
            if not _near(got[name], row[name], tolerance):
                findings.append(f"{row['symbol']} {name}: {_fmt(got[name])} in the stored "
                                f"{which} minutes against {_fmt(row[name])} in the last "
                                "streamed daily bar")
    return findings
