"""The prediction before the close: features of today as of a cut time (15:45 New York),
so that orders can go into the closing auction, and its walk-forward.

**The partial bar.** Today's regular-session minute bars that have ended by the cut
(`partial_bars`: open of the first, highest high, lowest low, close of the last, summed
volume and trades, volume-weighted vwap) stand for today's daily bar. Its prices are put on
the history's point-in-time adjusted basis (`adjust_partial`): the raw pair (yesterday's
daily bar, today's partial bar) is adjusted with `adjustments.point_in_time`, so a split or
dividend going ex today applies, and scaled to yesterday's adjusted bar. Nothing after the
cut is read: a minute bar that ends after it is left out.

**The features** (`preclose_features`): for each day, the registry's (and the user's)
features computed on the history before the day plus its partial bar, the engine in
windowed mode over the largest look-back + 20 sessions, emitting that day's row only. With
the intraday family, the partial bar carries the day's intraday fields computed from the
same minutes up to the cut (`cut_fields`), the history the full days' fields.

**Timing.** A pre-close row of day t is traded at t's close: its label is
close[t + horizon] / close[t] - 1. That is the label of the close-to-close row of the
session before t (whose decision date is t). So a pre-close row of t is placed on the
previous session's feature date (`as_decision_rows`), and the close-to-close machinery
(panel, purge, training, scoring) applies unchanged: `predict_preclose` trains the main
model as `aurora predict` does and scores these rows; `evaluate_preclose` scores them with
each walk-forward fold's models, beside the close-to-close rows of the same dates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from aurora.adjustments import point_in_time
from aurora.calendar import previous_session, session_close_utc, session_open_utc, sessions_back
from aurora.features.builder import BuildInputs, FeatureSet
from aurora.features.compute import compute_panel
from aurora.features.panel import PanelInfo, bar_spans, shares_table
from aurora.intraday.daily import daily_fields, with_intraday
from aurora.progress import Progress, Steps

NEW_YORK = ZoneInfo("America/New_York")
PRICE_COLUMNS = ("open", "high", "low", "close", "vwap")
LATEST_CUT_BEFORE_CLOSE = dt.timedelta(minutes=15)  # a half day's cut: 12:45


def cut_instant(day: dt.date, cut_time: dt.time) -> dt.datetime:
    """The UTC instant of `cut_time` New York on `day`, at the latest 15 minutes before
    the session's close (a half day closes at 13:00)."""
    wanted = dt.datetime.combine(day, cut_time, NEW_YORK).astimezone(dt.UTC)
    return min(wanted, session_close_utc(day) - LATEST_CUT_BEFORE_CLOSE)


def partial_bars(minutes: pl.DataFrame, cut_time: dt.time, bar_minutes: int = 1
                 ) -> pl.DataFrame:
    """One raw bar per (symbol, date) of `minutes` (intraday schema): the regular-session
    bars that have ended by the day's cut (`cut_instant`). Columns: date, symbol, open,
    high, low, close, volume, vwap, trade_count."""
    days = sorted(minutes.get_column("date").unique().to_list())
    bounds = pl.DataFrame({
        "date": days,
        "_open": [session_open_utc(d) for d in days],
        "_cut": [cut_instant(d, cut_time) for d in days],
    }, schema={"date": pl.Date, "_open": pl.Datetime("us", "UTC"),
               "_cut": pl.Datetime("us", "UTC")})
    ends = pl.col("timestamp") + pl.duration(minutes=bar_minutes)
    kept = minutes.join(bounds, on="date").filter(
        (pl.col("timestamp") >= pl.col("_open")) & (ends <= pl.col("_cut")))
    vwap = (pl.col("vwap").fill_null(pl.col("close")) * pl.col("volume")).sum() \
        / pl.col("volume").sum()
    return (kept.sort("symbol", "timestamp").group_by("symbol", "date", maintain_order=True)
            .agg(pl.col("open").first(), pl.col("high").max(), pl.col("low").min(),
                 pl.col("close").last(), pl.col("volume").sum(), vwap.alias("vwap"),
                 pl.col("trade_count").sum())
            .sort("symbol", "date"))


def cut_fields(minutes: pl.DataFrame, cut_time: dt.time) -> pl.DataFrame:
    """The intraday fields (`aurora.intraday.daily`) of each (symbol, date) of `minutes`
    (1-minute bars) from the bars ended by the day's cut: no minute after it is read."""
    return daily_fields(minutes, end_of=lambda day: cut_instant(day, cut_time))


def adjust_partial(partial: pl.DataFrame, adjusted: pl.DataFrame, raw: pl.DataFrame,
                   actions: pl.DataFrame | None) -> pl.DataFrame:
    """`partial` (raw bars, any days) on the basis of `adjusted` (point-in-time adjusted
    daily bars); `raw` holds the raw daily bars of the sessions before. A symbol without a
    bar before its partial bar's day is left out (it has no history to rank on). Adds
    `dollar_volume` (raw close x raw volume), as the adjusted prices carry it."""
    days = sorted(partial.get_column("date").unique().to_list())
    out = [_adjust_day(partial.filter(pl.col("date") == day), day, adjusted, raw, actions)
           for day in days]
    return (pl.concat(out, how="vertical_relaxed").sort("symbol", "date") if out
            else adjusted.clear())


def _adjust_day(partial: pl.DataFrame, day: dt.date, adjusted: pl.DataFrame,
                raw: pl.DataFrame, actions: pl.DataFrame | None) -> pl.DataFrame:
    symbols = partial.get_column("symbol").to_list()
    recent = raw.filter(pl.col("symbol").is_in(symbols)
                        & pl.col("date").is_between(sessions_back(day, 10), day, closed="left"))
    before = recent.sort("symbol", "date").group_by("symbol").last()
    columns = [c for c in before.columns if c in partial.columns]
    pairs = pl.concat([before.select(columns), partial.select(columns)],
                      how="vertical_relaxed").sort("symbol", "date")
    if actions is not None:
        actions = actions.filter(pl.col("symbol").is_in(symbols))
    pit = point_in_time(pairs, actions)
    basis = before.select("symbol", pl.col("date").alias("_prev")).join(
        adjusted.select("symbol", pl.col("date").alias("_prev"),
                        pl.col("close").alias("_adj_close"),
                        pl.col("volume").alias("_adj_volume")), on=["symbol", "_prev"]
    ).join(pit.select("symbol", pl.col("date").alias("_prev"),
                      pl.col("close").alias("_pit_close"),
                      pl.col("volume").alias("_pit_volume")), on=["symbol", "_prev"])
    price_scale = pl.col("_adj_close") / pl.col("_pit_close")
    volume_scale = pl.when(pl.col("_pit_volume") > 0).then(
        pl.col("_adj_volume") / pl.col("_pit_volume")).otherwise(1.0)
    today = pit.filter(pl.col("date") == day).join(basis.drop("_prev"), on="symbol")
    scaled = today.with_columns(
        *[(pl.col(c) * price_scale).alias(c) for c in PRICE_COLUMNS if c in today.columns],
        (pl.col("volume") * volume_scale).alias("volume"))
    dollars = partial.select("symbol", (pl.col("close") * pl.col("volume"))
                             .alias("dollar_volume"))
    scaled = scaled.drop("dollar_volume", strict=False).join(dollars, on="symbol")
    return scaled.select([c for c in adjusted.columns if c in scaled.columns])


def preclose_features(inputs: BuildInputs, partial_adjusted: pl.DataFrame,
                      days: Sequence[dt.date], *, features: FeatureSet,
                      symbols: Sequence[str] | None = None,
                      progress: Progress | None = None) -> pl.DataFrame:
    """The feature rows of each of `days`, computed on the adjusted history before the day
    and its (adjusted) partial bar: date, symbol, the features. A day without partial
    bars has no rows. With the intraday family, `inputs.intraday` holds the history's
    intraday fields and `partial_adjusted` the days' fields to the cut (`cut_fields`)."""
    history = with_intraday(inputs.prices, inputs.intraday if features.intraday else None)
    spans = bar_spans(history)
    shares = shares_table(inputs.fundamentals, history, inputs.actions, PanelInfo())
    lookback = features.max_lookback + 20
    steps = Steps(progress, "pre-close features", len(days))
    out = []
    for day in days:
        today = partial_adjusted.filter(pl.col("date") == day)
        if today.height:
            window = history.filter(pl.col("date").is_between(
                sessions_back(day, lookback), day, closed="left"))
            frame = compute_panel(
                pl.concat([window, today], how="vertical_relaxed").sort("symbol", "date"),
                sectors=inputs.sectors, fundamentals=inputs.fundamentals,
                actions=inputs.actions, universe=symbols, extra=features.added,
                shares=shares, windowed=True, spans=_spans_through(spans, day),
                since=np.datetime64(day), until=np.datetime64(day), workers=1)
            out.append(frame.features.filter(pl.col("date") == day))
        steps.step()
    if not out:
        return pl.DataFrame()
    return pl.concat(out, how="vertical_relaxed").sort("symbol", "date")


def _spans_through(spans: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """Each symbol's first bar, and its last no later than `day` (a symbol listed after
    `day` is dropped: it has no row then)."""
    return (spans.filter(pl.col("first") <= day)
            .with_columns(pl.min_horizontal("last", pl.lit(day)).alias("last")))


def as_decision_rows(rows: pl.DataFrame) -> pl.DataFrame:
    """Pre-close rows of day t moved to the session before t: there, the close-to-close
    label is close[t + horizon] / close[t] - 1, the pre-close trade's (module docstring)."""
    dates = rows.get_column("date").unique().to_list()
    before = {d: previous_session(d) for d in dates}
    return rows.with_columns(pl.col("date").replace_strict(before, return_dtype=pl.Date))
