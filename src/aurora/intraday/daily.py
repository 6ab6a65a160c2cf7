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

import numpy as np
import polars as pl

from aurora.calendar import session_close_utc, session_open_utc
from aurora.errors import DataValidationError
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
    docstring for the fields and what makes one null. A row depends on its own day's bars
    only, to the last bit: each sum runs over that day's bars in time order, whatever else
    `bars` holds."""
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
            .select(
                "symbol", "date", "open", "close", "volume",
                pl.col("vwap").fill_null(pl.col("close")).alias("price"),
                ((pl.col("timestamp") - pl.col("_open")).dt.total_minutes()
                 // RETURN_MINUTES).alias("bucket"),
                (pl.col("timestamp") + length <= pl.col("_open") + EDGE).alias("early"),
                (pl.col("timestamp") + length <= pl.col("_end") - EDGE).alias("before"),
                (pl.col("timestamp") >= pl.col("_end") - EDGE).alias("late"))
            .collect())
    if kept.height == 0:
        return pl.DataFrame(schema=schema)
    key = kept.select("symbol", "date")
    changed = ((pl.col("symbol") != pl.col("symbol").shift(1))
               | (pl.col("date") != pl.col("date").shift(1))).fill_null(True)
    starts = np.flatnonzero(key.select(changed).to_series().to_numpy())  # each day's first bar
    a = {c: kept[c].to_numpy() for c in ("open", "close", "volume", "price", "bucket")}
    early, before, late = (kept[c].to_numpy() for c in ("early", "before", "late"))
    ends = np.r_[starts[1:], kept.height]
    volume = np.add.reduceat(a["volume"], starts)
    with np.errstate(all="ignore"):
        out = {
            RV: _realised_variance(a["open"], a["close"], a["bucket"], starts),
            RET_FIRST: _log_ratio(_last_where(a["close"], early, starts),
                                  a["open"][starts]),
            RET_LAST: _log_ratio(a["close"][ends - 1],
                                 _last_where(a["close"], before, starts)),
            VWAP_GAP: np.where(volume > 0, _log_ratio(
                a["close"][ends - 1] * volume,
                np.add.reduceat(a["price"] * a["volume"], starts)), np.nan),
            VOLUME_LAST: np.where(volume > 0, np.add.reduceat(
                np.where(late, a["volume"], 0.0), starts) / volume, np.nan),
        }
    frame = key[starts].with_columns(
        *[pl.Series(name, values).fill_nan(None) for name, values in out.items()])
    return frame.select("date", "symbol", *FIELDS).cast(schema)  # type: ignore[arg-type]


def _log_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """ln(numerator / denominator), NaN where either is missing or not positive."""
    ok = (numerator > 0) & (denominator > 0)
    return np.where(ok, np.log(np.where(ok, numerator / np.where(ok, denominator, 1.0), 1.0)),
                    np.nan)


def _last_where(values: np.ndarray, mask: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per day (rows starts[i] .. starts[i+1] - 1, in time order, `mask` true on a prefix of
    them): the value of the last row where `mask` holds, NaN when none does."""
    count = np.add.reduceat(mask.astype(np.int64), starts)
    return np.where(count > 0, values[np.maximum(starts + count - 1, 0)], np.nan)


def _realised_variance(opens: np.ndarray, closes: np.ndarray, buckets: np.ndarray,
                       starts: np.ndarray) -> np.ndarray:
    """Per day: the sum of squared log returns between the closes of its 5-minute buckets
    (the first from the day's first open); NaN with fewer than two buckets."""
    n = len(closes)
    day_start = np.zeros(n, dtype=bool)
    day_start[starts] = True
    last_of_bucket = np.r_[(buckets[1:] != buckets[:-1]) | day_start[1:], True]
    rows = np.flatnonzero(last_of_bucket)  # the row of each bucket's close
    day_of = np.cumsum(day_start) - 1
    first_bucket = np.r_[True, day_of[rows[1:]] != day_of[rows[:-1]]]
    previous = np.where(first_bucket, opens[starts][day_of[rows]],
                        np.r_[np.nan, closes[rows[:-1]]])
    squared = np.log(closes[rows] / previous) ** 2
    bucket_starts = np.flatnonzero(first_bucket)
    count = np.diff(np.r_[bucket_starts, len(rows)])
    return np.where(count >= 2, np.add.reduceat(squared, bucket_starts), np.nan)


def summarizer(timeframe: str) -> Callable[[pl.DataFrame], pl.DataFrame] | None:
    """What `intraday.store.write_days` stores beside a day's `timeframe` bars: their
    `daily_fields`, for 1Min and 5Min bars (None for longer bars, which have none)."""
    if timeframe not in TIMEFRAMES:
        return None
    minutes = 1 if timeframe == "1Min" else 5
    return lambda bars: daily_fields(bars, bar_minutes=minutes)


def load_daily_fields(data_dir: Path, timeframe: str, *, start: dt.date | None = None,
                      end: dt.date | None = None, symbols: Collection[str] | None = None,
                      progress: Progress | None = None,
                      version: str | None = None) -> pl.DataFrame:
    """`daily_fields` of the stored `timeframe` bars (1Min or 5Min) dated within
    [start, end], from the store's `version` (None: its latest): each day's stored summary
    when the store holds one (`intraday.store`, checked against its manifest sha256), else
    computed from its bars, read at most `DAYS_PER_READ` consecutive stored days at a time.
    Stored and computed values are equal: each day is summed up from its own bars alone
    (`daily_fields`). StoreError when no bars of `timeframe` are stored (`aurora fetch
    --timeframe`), ValueError for another timeframe, DataValidationError for a summary
    part whose columns are not FIELDS'."""
    summarize = summarizer(timeframe)
    if summarize is None:
        raise ValueError(f"intraday features are computed from {' or '.join(TIMEFRAMES)} bars,"
                         f" not {timeframe}")
    from aurora.intraday.store import intraday_store, stored_days

    store = intraday_store(data_dir, timeframe)
    version = version or store.current_version()
    if version is None:  # read_intraday says what to run
        read_intraday(data_dir, timeframe)
    assert version is not None
    manifest = store.manifest(version)
    every = list(stored_days(manifest))
    days = [d for d in every if (start is None or d >= start) and (end is None or d <= end)]
    summaries = stored_days(manifest, fields=True)
    kept = [d for d in days if d in summaries]
    steps = Steps(progress, "intraday fields", len(days))
    out = [_read_summaries(store, version, [summaries[d] for d in kept], symbols)]
    steps.step(len(kept))
    for run in _runs([d for d in days if d not in summaries], every):
        bars = read_intraday(data_dir, timeframe, start=run[0], end=run[-1],
                             symbols=symbols, version=version)
        out += [summarize(bars.filter(pl.col("date") == day)) for day in run]
        steps.step(len(run))
    return pl.concat(out).sort("symbol", "date")


def _runs(missing: list[dt.date], stored: list[dt.date]) -> list[list[dt.date]]:
    """`missing` (sorted stored days) cut into runs of days consecutive among `stored`, of
    at most DAYS_PER_READ days: a run's date range holds only its own parts."""
    position = {d: i for i, d in enumerate(stored)}
    runs: list[list[dt.date]] = []
    for day in missing:
        run = runs[-1] if runs else None
        if (run is not None and len(run) < DAYS_PER_READ
                and position[day] == position[run[-1]] + 1):
            run.append(day)
        else:
            runs.append([day])
    return runs


def _read_summaries(store: Any, version: str, names: list[str],
                    symbols: Collection[str] | None) -> pl.DataFrame:
    """The stored summary parts `names` of `store` (an intraday store) version `version`,
    each verified against the manifest, rows of `symbols` (None: all)."""
    empty = daily_fields(pl.DataFrame())
    if not names:
        return empty
    paths = [store.verified_path(name, version) for name in names]
    for name, path in zip(names, paths, strict=True):
        columns = pl.read_parquet_schema(path)
        if dict(columns) != dict(empty.schema):
            raise DataValidationError(f"{name} of {store.root} version {version}: columns "
                                      f"{', '.join(columns)}, expected {', '.join(empty.columns)}")
    scan = pl.scan_parquet(paths, hive_partitioning=False)
    if symbols is not None:
        scan = scan.filter(pl.col("symbol").is_in(sorted(set(symbols))))
    return scan.collect()


def with_intraday(prices: pl.DataFrame, fields: pl.DataFrame | None) -> pl.DataFrame:
    """`prices` (daily bars) with the FIELDS of `fields` (`daily_fields` rows) joined on
    (symbol, date): null on a day without intraday bars. `fields` None: `prices` as given."""
    if fields is None:
        return prices
    fields = fields.select("symbol", "date", *FIELDS)
    return prices.drop(FIELDS, strict=False).join(fields, on=["symbol", "date"], how="left",
                                                  maintain_order="left")


def stored_digest(data_dir: Path, timeframe: str, through: dt.date,
                  version: str | None = None) -> dict[str, str | int | None]:
    """What a build's intraday inputs were, without reading them: the intraday store's
    `version` (None: its latest), the definitions of the fields (`fields`, the summaries'
    dataset name, which changes with them) and the sha256 of its bars parts dated
    `through` or earlier (name and sha256 of each in the manifest), so that a later build
    can tell a restated or late day, or new definitions, from new days."""
    import hashlib

    from aurora.intraday.store import FIELDS_DATASET, intraday_store, stored_days

    store = intraday_store(data_dir, timeframe)
    version = version or store.current_version()
    if version is None:
        return {"timeframe": timeframe, "version": "", "fields": FIELDS_DATASET, "days": 0,
                "through": through.isoformat(), "last_day": None, "sha256": ""}
    manifest = store.manifest(version)
    digest = hashlib.sha256()
    days = [(d, n) for d, n in stored_days(manifest).items() if d <= through]
    for _, name in days:
        digest.update(f"{name}={manifest.files[name].sha256}\n".encode())
    return {"timeframe": timeframe, "version": version, "fields": FIELDS_DATASET,
            "days": len(days),
            "through": through.isoformat(),
            "last_day": days[-1][0].isoformat() if days else None,
            "sha256": digest.hexdigest()}


def first_stored_day(data_dir: Path, timeframe: str,
                     version: str | None = None) -> dt.date | None:
    """The first session whose `timeframe` bars are stored in `version` (None: the
    latest), or None."""
    from aurora.intraday.store import intraday_store, stored_days

    store = intraday_store(data_dir, timeframe)
    version = version or store.current_version()
    days = list(stored_days(store.manifest(version))) if version is not None else []
    return days[0] if days else None


def uses_intraday(expr: Any) -> bool:
    """True when the expression (`aurora.features.expr.Expr`) reads an intraday field."""
    return any(getattr(node, "kind", "") == "field" and getattr(node, "name", "") in FIELDS
               for node in expr.walk())
