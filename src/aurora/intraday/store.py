"""Where intraday bars live: one store per timeframe, one Parquet part per session date.

`intraday_store(data_dir, "1Min")` is a `Store` of its own at `<data_dir>/intraday/1Min`,
with the same versions, manifests, sha256 checks, lock and atomic publication as the main
store, but apart from it: a day's minutes are hundreds of times its daily bars, and every
version of the main store (each build, predict, report) holds its own copy of what it
inherits, which minutes must not multiply.

Its dataset `bars` is partitioned by New York session date (hive-style,
`bars/date=2024-03-01/part-0.parquet`), each part holding that day's bars (extended hours
included) sorted by (symbol, timestamp), in `aurora.schemas.INTRADAY_SCHEMA`. A fetch writes
the parts of the days it fetched; the others are inherited from the version it started from.

Beside it, `FIELDS_DATASET` holds each day's summary for the intraday features
(`aurora.intraday.daily`, one row per symbol), written with the day's bars when the writer
passes `summarize` (a fetch of 1Min or 5Min bars, the stream's publication). Its name
carries the summaries' version: a store written under another definition is not read, and
the summaries are computed from the bars again. Writing a day's bars without `summarize`
leaves that day's inherited summary out, so a summary never outlives its bars.

Contract of `read_intraday`: only the parts dated within [start, end] are opened, each
checked against its manifest sha256 and the schema first (StoreError or
DataValidationError naming the part); symbols are pushed down into the scan; rows come back
sorted by (symbol, timestamp).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Collection
from pathlib import Path

import polars as pl

from aurora.atomic import atomic_write_parquet
from aurora.errors import ConfigError, DataValidationError, StoreError, first_line
from aurora.schemas import INTRADAY_SCHEMA, INTRADAY_TABLE, check_schema
from aurora.store.manifest import Manifest
from aurora.store.versions import Store, Transaction

DATASET = "bars"
FIELDS_DATASET = "fields_v1"  # bump when aurora.intraday.daily's definitions change
PART_FILE = "part-0.parquet"
TIMEFRAMES = ("1Min", "5Min", "15Min", "30Min", "1Hour")
_PART = re.compile(re.escape(DATASET) + r"/date=(?P<date>\d{4}-\d{2}-\d{2})/"
                   + re.escape(PART_FILE))
_FIELDS_PART = re.compile(re.escape(FIELDS_DATASET) + r"/date=(?P<date>\d{4}-\d{2}-\d{2})/"
                          + re.escape(PART_FILE))
HINT = "run `aurora fetch --timeframe {tf}` first"


def check_intraday_timeframe(timeframe: str) -> str:
    """`timeframe` when Aurora stores it (TIMEFRAMES), else ConfigError naming the choices."""
    if timeframe not in TIMEFRAMES:
        raise ConfigError(f"--timeframe {timeframe!r}: intraday bars are one of "
                          f"{', '.join(TIMEFRAMES)} (daily bars: 1Day)")
    return timeframe


def bar_minutes(timeframe: str) -> int:
    """The length of one bar of `timeframe` in minutes."""
    check_intraday_timeframe(timeframe)
    return 60 if timeframe == "1Hour" else int(timeframe.removesuffix("Min"))


def intraday_store(data_dir: Path, timeframe: str) -> Store:
    """The store of `timeframe`'s bars under `data_dir` (created on its first write)."""
    return Store(Path(data_dir) / "intraday" / check_intraday_timeframe(timeframe))


def part_name(day: dt.date, dataset: str = DATASET) -> str:
    return f"{dataset}/date={day.isoformat()}/{PART_FILE}"


def stored_days(manifest: Manifest, *, fields: bool = False) -> dict[dt.date, str]:
    """Session date -> store name of each bars part in `manifest` (`fields`: of each
    summary part), by date."""
    pattern = _FIELDS_PART if fields else _PART
    found = {}
    for name in manifest.files:
        match = pattern.fullmatch(name)
        if match:
            found[dt.date.fromisoformat(match["date"])] = name
    return dict(sorted(found.items()))


def write_days(txn: Transaction, bars: pl.DataFrame,
               summarize: Callable[[pl.DataFrame], pl.DataFrame] | None = None
               ) -> list[dt.date]:
    """Write one part per date of `bars` (INTRADAY_SCHEMA) into `txn`, replacing the
    parent's parts of those dates, and with `summarize` each day's summary
    (FIELDS_DATASET; without it, the parent's summary of that day is left out); the dates
    written."""
    days = sorted(bars.get_column("date").unique().to_list())
    inherited = (stored_days(txn.store.manifest(txn.parent), fields=True)
                 if txn.parent is not None else {})
    for day in days:
        rows = bars.filter(pl.col("date") == day).sort("symbol", "timestamp")
        name = part_name(day)
        atomic_write_parquet(txn.path(name), rows.select(list(INTRADAY_SCHEMA)),
                             compression="zstd")
        txn.describe(name, rows=rows.height)
        summary = part_name(day, FIELDS_DATASET)
        if summarize is not None:
            fields = summarize(rows)
            atomic_write_parquet(txn.path(summary), fields, compression="zstd")
            txn.describe(summary, rows=fields.height)
        elif day in inherited:
            txn.remove(summary)
    return days


def read_intraday(data_dir: Path, timeframe: str, *, start: dt.date | None = None,
                  end: dt.date | None = None, symbols: Collection[str] | None = None,
                  version: str | None = None) -> pl.DataFrame:
    """The stored `timeframe` bars dated within [start, end] and of `symbols` (None: all),
    sorted by (symbol, timestamp); an empty frame of the schema when no day is in range.
    StoreError when nothing was fetched yet or a part does not match its manifest."""
    store = intraday_store(data_dir, timeframe)
    version = version or store.current_version()
    if version is None:
        raise StoreError(f"{store.root}: no {timeframe} bars stored ("
                         + HINT.format(tf=timeframe) + ")")
    days = stored_days(store.manifest(version))
    paths = []
    for day, name in days.items():
        if (start is None or day >= start) and (end is None or day <= end):
            path = store.verified_path(name, version)
            assert path is not None
            check_schema(path, INTRADAY_TABLE, f"{name} of {store.root} version {version}")
            paths.append(path)
    if not paths:
        return pl.DataFrame(schema=INTRADAY_SCHEMA)
    scan = pl.scan_parquet(paths, hive_partitioning=False)
    if symbols is not None:
        scan = scan.filter(pl.col("symbol").is_in(sorted(set(symbols))))
    try:
        frame = scan.collect()
    except (OSError, pl.exceptions.PolarsError) as exc:
        first = first_line(exc)
        raise DataValidationError(f"{store.root}: unreadable Parquet ({first})") from None
    return frame.sort("symbol", "timestamp")
