"""Validation of intraday bars: against the session's minutes and against the daily bar.

Errors (the fetch publishes nothing, and names the first offending bar):
- a repeated (symbol, timestamp);
- a timestamp off the timeframe's clock grid (bars are labelled by their start);
- a non-positive price, a negative volume, or a high below max(open, close) or a low
  above min(open, close).

Findings (reported in the version's validation.json and the fetch summary; the bars are
kept, since real minute data has them):
- **gaps**: a symbol-day whose regular session (09:30 to the close, 13:00 on half days)
  has a run of more than `max_gap_minutes` without a bar, counting from the open and to
  the close. Alpaca emits no bar for a minute without an eligible trade, so short gaps in
  thin names are normal and not reported;
- **missing days**: a daily bar without a single intraday bar, and intraday bars of a
  symbol-day without a daily bar;
- **disagreements**: the regular session's first open, highest high, lowest low, last
  close and summed volume against the daily bar, each within a relative tolerance. The
  daily close is the closing auction's print, which Alpaca's bars put in the bar starting
  at the close, so the close also agrees when that bar's open matches; the volume also
  agrees when the sum over all the day's bars (extended hours included) matches. Bars
  longer than 30 minutes (1Hour) straddle the 09:30 open, so they are not compared.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from aurora.calendar import session_close_utc, session_open_utc
from aurora.config import IntradayConfig
from aurora.errors import DataValidationError
from aurora.intraday.store import bar_minutes

EXAMPLES = 5
_KEY = ["symbol", "date"]


@dataclass
class IntradayValidation:
    """What `validate_intraday` found; `warnings()` are its one-line summaries."""

    bars: int = 0
    symbol_days: int = 0
    extended_bars: int = 0
    gaps: list[str] = field(default_factory=list)
    missing_days: list[str] = field(default_factory=list)
    without_daily: list[str] = field(default_factory=list)
    disagreements: list[str] = field(default_factory=list)

    def merge(self, other: IntradayValidation) -> None:
        self.bars += other.bars
        self.symbol_days += other.symbol_days
        self.extended_bars += other.extended_bars
        for name in ("gaps", "missing_days", "without_daily", "disagreements"):
            getattr(self, name).extend(getattr(other, name))

    def warnings(self) -> list[str]:
        out = []
        for items, what in (
                (self.gaps, "symbol-day(s) with a long run of regular-session minutes "
                            "without a bar"),
                (self.missing_days, "symbol-day(s) with a daily bar but no intraday bar"),
                (self.without_daily, "symbol-day(s) with intraday bars but no daily bar"),
                (self.disagreements, "symbol-day(s) whose bars disagree with the daily bar")):
            if items:
                shown = "; ".join(items[:EXAMPLES])
                more = f"; +{len(items) - EXAMPLES} more" if len(items) > EXAMPLES else ""
                out.append(f"{len(items)} {what}: {shown}{more}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"bars": self.bars, "symbol_days": self.symbol_days,
                "extended_hours_bars": self.extended_bars, "gaps": self.gaps,
                "missing_days": self.missing_days, "without_daily": self.without_daily,
                "disagreements": self.disagreements}


def _rules(timeframe: str) -> list[tuple[pl.Expr, str]]:
    step = bar_minutes(timeframe) * 60
    return [
        (pl.struct("symbol", "timestamp").is_duplicated(), "is repeated"),
        (pl.col("timestamp").dt.epoch("s") % step != 0,
         f"is not on the {timeframe} grid (bars are labelled by their start)"),
        (pl.min_horizontal("open", "high", "low", "close") <= 0, "has a non-positive price"),
        (pl.col("volume") < 0, "has a negative volume"),
        ((pl.col("high") < pl.max_horizontal("open", "close"))
         | (pl.col("low") > pl.min_horizontal("open", "close")),
         "has a high below its open or close, or a low above them"),
    ]


def bad_bars(bars: pl.DataFrame, timeframe: str) -> pl.Expr:
    """True for the bars that break an error rule (a repeated bar: every copy)."""
    return pl.any_horizontal(c.fill_null(True) for c, _ in _rules(timeframe))


def check_bars(bars: pl.DataFrame, timeframe: str, where: str) -> None:
    """DataValidationError naming `where` and the first bar that breaks an error rule."""
    for condition, problem in _rules(timeframe):
        hit = bars.filter(condition.fill_null(True))
        if hit.height:
            row = hit.row(0, named=True)
            raise DataValidationError(
                f"{where}: the {timeframe} bar of {row['symbol']} at "
                f"{row['timestamp']:%Y-%m-%dT%H:%M}Z {problem} ({hit.height} bar(s) in all)")


def _sessions(days: list[dt.date]) -> pl.DataFrame:
    return pl.DataFrame({
        "date": days,
        "_open": [session_open_utc(d) for d in days],
        "_close": [session_close_utc(d) for d in days],
    }, schema={"date": pl.Date, "_open": pl.Datetime("us", "UTC"),
               "_close": pl.Datetime("us", "UTC")})


def _day_summary(bars: pl.DataFrame, minutes: int) -> pl.DataFrame:
    """Per (symbol, date): the regular session's OHLCV, the longest gap in minutes, the
    opening of the first bar at or after the close, and the whole day's volume."""
    days = sorted(bars.get_column("date").unique().to_list())
    framed = bars.join(_sessions(days), on="date", how="left")
    regular = pl.col("timestamp").is_between(pl.col("_open"), pl.col("_close"), closed="left")
    length = pl.duration(minutes=minutes)
    gap_minutes = lambda e: e.dt.total_minutes()  # noqa: E731
    inside = framed.filter(regular).sort("symbol", "timestamp").group_by(
        _KEY, maintain_order=True).agg(
        pl.col("open").first(), pl.col("high").max(), pl.col("low").min(),
        pl.col("close").last(), pl.col("volume").sum(),
        gap_minutes(pl.max_horizontal(
            pl.col("timestamp").first() - pl.col("_open").first(),
            (pl.col("timestamp").diff() - length).max(),
            pl.col("_close").first() - pl.col("timestamp").last() - length,
        )).alias("gap"),
        pl.col("timestamp").first().alias("first_bar"))
    after = framed.filter(pl.col("timestamp") >= pl.col("_close")).sort(
        "symbol", "timestamp").group_by(_KEY).agg(pl.col("open").first().alias("auction"))
    whole = framed.group_by(_KEY).agg(pl.col("volume").sum().alias("all_volume"),
                                      (~regular).sum().alias("extended"))
    return whole.join(inside, on=_KEY, how="left").join(after, on=_KEY, how="left")


def _gap_lines(days: pl.DataFrame) -> list[str]:
    return [f"{s} {d} ({gap} minutes)" if first is not None
            else f"{s} {d} (no regular-session bar)"
            for s, d, gap, first in days.select(*_KEY, "gap", "first_bar").iter_rows()]


def _near(got: pl.Expr, want: pl.Expr, tolerance: float) -> pl.Expr:
    return ((got - want).abs() <= tolerance * want.abs()).fill_null(False)


def validate_intraday(bars: pl.DataFrame, daily: pl.DataFrame | None, timeframe: str,
                      config: IntradayConfig, where: str) -> IntradayValidation:
    """Check `bars` (INTRADAY_SCHEMA) against the raw daily bars `daily` of the same
    symbols and dates (None: no daily bars to compare with; only the gaps are looked for);
    DataValidationError for an error rule (module docstring)."""
    check_bars(bars, timeframe, where)
    out = IntradayValidation(bars=bars.height)
    if bars.height == 0:
        if daily is not None:
            out.missing_days = [f"{s} {d}" for s, d in daily.select(_KEY).iter_rows()]
        return out
    summary = _day_summary(bars, bar_minutes(timeframe))
    out.symbol_days = summary.height
    out.extended_bars = int(summary.get_column("extended").sum())
    if daily is None or 30 % bar_minutes(timeframe):
        # without daily bars, or with bars that straddle the 09:30 open (1Hour: the 09:00
        # bar holds pre-market trades), only the gaps are looked for
        long_gaps = summary.filter(pl.col("gap").fill_null(10**9) > config.max_gap_minutes)
        out.gaps = _gap_lines(long_gaps.sort(_KEY))
        return out
    joined = summary.join(daily.select(*_KEY, *(pl.col(c).alias(f"d_{c}") for c in (
        "open", "high", "low", "close", "volume"))), on=_KEY, how="full", coalesce=True)
    joined = joined.sort(_KEY)
    for s, d in joined.filter(pl.col("all_volume").is_null()).select(_KEY).iter_rows():
        out.missing_days.append(f"{s} {d}")
    for s, d in joined.filter(pl.col("d_close").is_null()).select(_KEY).iter_rows():
        out.without_daily.append(f"{s} {d}")
    both = joined.filter(pl.col("all_volume").is_not_null() & pl.col("d_close").is_not_null())
    out.gaps = _gap_lines(both.filter(pl.col("gap").fill_null(10**9)
                                      > config.max_gap_minutes))
    pt, vt = config.price_tolerance, config.volume_tolerance
    rules = {
        "open": _near(pl.col("open"), pl.col("d_open"), pt),
        "high": _near(pl.col("high"), pl.col("d_high"), pt),
        "low": _near(pl.col("low"), pl.col("d_low"), pt),
        "close": _near(pl.col("close"), pl.col("d_close"), pt)
        | _near(pl.col("auction"), pl.col("d_close"), pt),
        "volume": _near(pl.col("volume"), pl.col("d_volume"), vt)
        | _near(pl.col("all_volume"), pl.col("d_volume"), vt),
    }
    checked = both.filter(pl.col("first_bar").is_not_null()).with_columns(
        **{f"ok_{k}": v for k, v in rules.items()})
    bad = checked.filter(~pl.all_horizontal(*(f"ok_{k}" for k in rules)))
    for row in bad.iter_rows(named=True):
        field_name = next(k for k in rules if not row[f"ok_{k}"])
        got, want = row[field_name], row[f"d_{field_name}"]
        out.disagreements.append(f"{row['symbol']} {row['date']} {field_name} {got:g} "
                                 f"against the daily {want:g}")
    return out
