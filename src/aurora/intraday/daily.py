"""Each day's intraday bars summed up as daily fields: the inputs of the intraday features.

`daily_fields(bars)` reduces the regular-session bars of each (symbol, session) to one row:

    intraday_rv_5min               sum of squared 5-minute log returns (realised variance;
                                   the first return is from the first bar's open)
    intraday_ret_first_30min       ln(close of the first 30 minutes / open of the first bar)
    intraday_ret_last_30min        ln(last close / last close 30 minutes before the end)
    intraday_close_vwap_gap        ln(last close / the day's volume-weighted average price)
    intraday_volume_share_last_30min   volume of the last 30 minutes / the day's volume

**Which bars.** A bar counts when it starts at or after the session's open (09:30 New York)
and ends by the day's end: the session's close (16:00, 13:00 on half days), or with
`cut_time` the pre-close cut (`aurora.predict.preclose.cut_instant`, 15:45 by default,
12:45 on a half day). Extended-hours bars and bars ending after the end are never read, so
a day's row uses no minute after its end: the pre-close variant of day t uses minutes up to
the cut, the close variant minutes up to t's close.

**Units and adjustment.** Every field is a log return or a share within one session, so a
split or dividend (which takes effect between sessions) changes none of them: they need no
adjustment and are the same on any price basis. `bar_minutes` is the bars' length (1 or 5);
5-minute returns join the bars' closes by 5-minute bucket from the open (a bucket without a
bar is bridged: the next return spans both).

**Missing data.** A field is null when its bars are not there: no bar in the first 30
minutes, none ending 30 minutes or more before the end, no volume, or fewer than two
5-minute buckets for the realised variance. Nothing is forward-filled across days.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import polars as pl

from aurora.calendar import session_close_utc, session_open_utc
from aurora.intraday.store import read_intraday
from aurora.progress import Progress, Steps
from aurora.schemas import INTRADAY_FIELDS

FIELDS: tuple[str, ...] = INTRADAY_FIELDS
RV, RET_FIRST, RET_LAST, VWAP_GAP, VOLUME_LAST = FIELDS
TIMEFRAMES = ("1Min", "5Min")  # 5-minute returns need bars of at most 5 minutes
RETURN_MINUTES = 5
EDGE = dt.timedelta(minutes=30)
DAYS_PER_READ = 21  # a month of parts at a time bounds the memory of a long history

_TS = pl.Datetime("us", "UTC")


def _bounds(days: list[dt.date], end_of: Callable[[dt.date], dt.datetime]) -> pl.DataFrame:
    return pl.DataFrame({"date": days, "_open": [session_open_utc(d) for d in days],
                         "_end": [end_of(d) for d in days]},
                        schema={"date": pl.Date, "_open": _TS, "_end": _TS})


def daily_fields(bars: pl.DataFrame, *, bar_minutes: int = 1,
                 end_of: Callable[[dt.date], dt.datetime] = session_close_utc
                 ) -> pl.DataFrame:
    """One row per (symbol, date) of `bars` (intraday schema) with a regular-session bar:
    date, symbol and FIELDS (Float64), sorted by (symbol, date). `end_of(day)`: the UTC
    instant a day's bars must end by (default: the session's close); see the module
    docstring for the fields and what makes one null."""
    if bar_minutes not in (1, 5):
        raise ValueError(f"intraday features need 1- or 5-minute bars, not {bar_minutes}")
    schema = {"date": pl.Date, "symbol": pl.String, **{f: pl.Float64 for f in FIELDS}}
    if bars.height == 0:
        return pl.DataFrame(schema=schema)
    days = sorted(bars.get_column("date").unique().to_list())
    length = pl.duration(minutes=bar_minutes)
    kept = (bars.lazy()
            .join(_bounds(days, end_of).lazy(), on="date")
            .filter((pl.col("timestamp") >= pl.col("_open"))
                    & (pl.col("timestamp") + length <= pl.col("_end")))
            .sort("symbol", "date", "timestamp")
            .with_columns(
                ((pl.col("timestamp") - pl.col("_open")).dt.total_minutes()
                 // RETURN_MINUTES).alias("_bucket"),
                (pl.col("timestamp") + length).alias("_ends"),
                pl.col("vwap").fill_null(pl.col("close")).alias("_price")))
    day = ["symbol", "date"]
    per_day = kept.group_by(day, maintain_order=True).agg(
        pl.col("open").first().alias("_first_open"),
        pl.col("close").last().alias("_last_close"),
        pl.col("close").filter(pl.col("_ends") <= pl.col("_open") + EDGE).last()
        .alias("_close_30"),
        pl.col("close").filter(pl.col("_ends") <= pl.col("_end") - EDGE).last()
        .alias("_close_before"),
        pl.col("volume").sum().alias("_volume"),
        pl.col("volume").filter(pl.col("timestamp") >= pl.col("_end") - EDGE).sum()
        .alias("_volume_last"),
        (pl.col("_price") * pl.col("volume")).sum().alias("_value"))
    buckets = (kept.group_by([*day, "_bucket"], maintain_order=True)
               .agg(pl.col("close").last().alias("_close"), pl.col("open").first()
                    .alias("_open_price"))
               .with_columns(pl.col("_close").shift(1).over(day).alias("_prev")))
    first_bucket = pl.col("_prev").is_null()
    returns = buckets.with_columns(
        pl.when(first_bucket).then(pl.col("_close") / pl.col("_open_price"))
        .otherwise(pl.col("_close") / pl.col("_prev")).log().alias("_r"))
    rv = returns.group_by(day).agg(
        pl.when(pl.len() >= 2).then((pl.col("_r") ** 2).sum()).alias(RV))
    volume = pl.col("_volume")
    out = per_day.join(rv, on=day, how="left").select(
        "date", "symbol", RV,
        (pl.col("_close_30") / pl.col("_first_open")).log().alias(RET_FIRST),
        (pl.col("_last_close") / pl.col("_close_before")).log().alias(RET_LAST),
        pl.when(volume > 0).then((pl.col("_last_close") * volume / pl.col("_value")).log())
        .alias(VWAP_GAP),
        pl.when(volume > 0).then(pl.col("_volume_last") / volume).alias(VOLUME_LAST))
    return out.collect().cast(schema).sort("symbol", "date")  # type: ignore[arg-type]


def load_daily_fields(data_dir: Path, timeframe: str, *, start: dt.date | None = None,
                      end: dt.date | None = None, symbols: Collection[str] | None = None,
                      progress: Progress | None = None) -> pl.DataFrame:
    """`daily_fields` of the stored `timeframe` bars (1Min or 5Min) dated within
    [start, end], read `DAYS_PER_READ` parts at a time. StoreError when no bars of
    `timeframe` are stored (`aurora fetch --timeframe`), ValueError for another timeframe."""
    if timeframe not in TIMEFRAMES:
        raise ValueError(f"intraday features are computed from {' or '.join(TIMEFRAMES)} bars,"
                         f" not {timeframe}")
    from aurora.intraday.store import intraday_store, stored_days

    store = intraday_store(data_dir, timeframe)
    version = store.current_version()
    if version is None:  # read_intraday says what to run
        read_intraday(data_dir, timeframe)
    assert version is not None
    days = [d for d in stored_days(store.manifest(version))
            if (start is None or d >= start) and (end is None or d <= end)]
    minutes = 1 if timeframe == "1Min" else 5
    steps = Steps(progress, "intraday fields", len(days))
    out = []
    for i in range(0, len(days), DAYS_PER_READ):
        chunk = days[i:i + DAYS_PER_READ]
        bars = read_intraday(data_dir, timeframe, start=chunk[0], end=chunk[-1],
                             symbols=symbols, version=version)
        out.append(daily_fields(bars, bar_minutes=minutes))
        steps.step(len(chunk))
    return (pl.concat(out) if out else daily_fields(pl.DataFrame())).sort("symbol", "date")


def with_intraday(prices: pl.DataFrame, fields: pl.DataFrame | None) -> pl.DataFrame:
    """`prices` (daily bars) with the FIELDS of `fields` (`daily_fields` rows) joined on
    (symbol, date): null on a day without intraday bars. `fields` None: `prices` as given."""
    if fields is None:
        return prices
    fields = fields.select("symbol", "date", *FIELDS)
    return prices.drop(FIELDS, strict=False).join(fields, on=["symbol", "date"], how="left",
                                                  maintain_order="left")


def stored_digest(data_dir: Path, timeframe: str, through: dt.date) -> dict[str, str | int]:
    """What a build's intraday inputs were, without reading them: the intraday store's
    version and the sha256 of its parts dated `through` or earlier (name and sha256 of each
    in the manifest), so that a later build can tell a restated or late day from new ones."""
    import hashlib

    from aurora.intraday.store import intraday_store, stored_days

    store = intraday_store(data_dir, timeframe)
    version = store.current_version()
    if version is None:
        return {"timeframe": timeframe, "version": "", "days": 0,
                "through": through.isoformat(), "last_day": None, "sha256": ""}
    manifest = store.manifest(version)
    digest = hashlib.sha256()
    days = [(d, n) for d, n in stored_days(manifest).items() if d <= through]
    for _, name in days:
        digest.update(f"{name}={manifest.files[name].sha256}\n".encode())
    return {"timeframe": timeframe, "version": version, "days": len(days),
            "through": through.isoformat(),
            "last_day": days[-1][0].isoformat() if days else None,
            "sha256": digest.hexdigest()}


def first_stored_day(data_dir: Path, timeframe: str) -> dt.date | None:
    """The first session whose `timeframe` bars are stored, or None."""
    from aurora.intraday.store import intraday_store, stored_days

    store = intraday_store(data_dir, timeframe)
    version = store.current_version()
    days = list(stored_days(store.manifest(version))) if version is not None else []
    return days[0] if days else None


def uses_intraday(expr: Any) -> bool:
    """True when the expression (`aurora.features.expr.Expr`) reads an intraday field."""
    return any(getattr(node, "kind", "") == "field" and getattr(node, "name", "") in FIELDS
               for node in expr.walk())
