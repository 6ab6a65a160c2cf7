"""Where a version's raw daily bars live, and the one way to find, read and write them.

A version published by this Aurora holds its bars as the dataset `prices`: one part per
calendar year (`prices/year=2018/part-0.parquet`, rows sorted by (symbol, date);
`aurora.store.datasets`), plus the index `prices.index.json`. The index holds the prices'
metadata (rows, symbols, date range, sessions, history start, source, feed, adjustment,
inactive symbols) and every part's name, rows and sha256; its manifest entry carries the
same metadata, so its sha256 identifies the whole dataset and `Store.origin` follows it
back to the fetch that wrote it. A version written before datasets holds one file,
`prices.parquet`, whose entry carries the metadata; it stays readable, and the next fetch
or import writes the dataset in its place.

Stages never spell these names: `Manifest.prices_entry` is the entry that describes the
prices,
`price_paths` the checked files to scan, `read_prices` the bars of a date range and a
symbol set (only the parts of those years are opened), and `write_prices` what a fetch or
an import publishes. A daily fetch rewrites only the years whose bars changed; the other
parts are carried over from the version it started from.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

import polars as pl

from aurora.atomic import atomic_write_json, sha256_file
from aurora.errors import StoreError
from aurora.schemas import PRICES_TABLE
from aurora.store.datasets import dataset_parts, dataset_paths, read_dataset, write_dataset
from aurora.store.files import PRICES, PRICES_DATASET, PRICES_INDEX
from aurora.store.versions import Store, Transaction

FETCH_HINT = "run `aurora fetch` first"
# Rows per row group of a part: a reader streaming every part at once (the out-of-core
# scan) holds about one decoded row group per part, and a symbol filter skips more.
ROW_GROUP_ROWS = 65_536


def price_paths(store: Store, version: str, start: dt.date | None = None,
                end: dt.date | None = None) -> list[Path]:
    """The checked files of `version`'s bars dated within [start, end] (each bound
    optional): `datasets.dataset_paths` with its errors (StoreError saying to run `aurora
    fetch` when the version holds no prices)."""
    return dataset_paths(store, PRICES_DATASET, version, PRICES_TABLE, legacy=PRICES,
                         start=start, end=end, hint=FETCH_HINT)


def read_prices(store: Store, version: str | None = None, *, start: dt.date | None = None,
                end: dt.date | None = None, symbols: Collection[str] | None = None
                ) -> pl.DataFrame:
    """The raw bars of `version` (default: latest) dated within [start, end] and of
    `symbols` (None: all), sorted by (symbol, date); errors as `datasets.read_dataset`, and
    StoreError when the store is empty."""
    version = version or store.current_version()
    if version is None:
        raise StoreError(f"{store.root}: the store is empty ({FETCH_HINT})")
    return read_dataset(store, PRICES_DATASET, version, PRICES_TABLE, legacy=PRICES,
                        start=start, end=end, symbols=symbols, hint=FETCH_HINT)


def changed_years(before: pl.DataFrame, after: pl.DataFrame) -> set[int]:
    """The calendar years whose bars differ between two frames of bars, whatever their row
    order (any value, a row added or gone, a column added, gone or of another type): the
    parts a fetch must write again.

    Each year is compared by its row count and two order-insensitive sums of the rows'
    64-bit hashes (wrapping sum and xor), one pass over each frame: a changed year taken
    for unchanged needs two 64-bit coincidences at once.
    """
    if set(before.columns) != set(after.columns) or (
            before.schema != after.select(before.columns).schema):
        return _years(before) | _years(after)
    old, new = pl.collect_all([_year_digests(before),
                               _year_digests(after.select(before.columns))])
    old_years, new_years = _by_year(old), _by_year(new)
    return {year for year in old_years.keys() | new_years.keys()
            if old_years.get(year) != new_years.get(year)}


def _years(bars: pl.DataFrame) -> set[int]:
    return set(bars.get_column("date").dt.year().unique().to_list())


def _year_digests(bars: pl.DataFrame) -> pl.LazyFrame:
    return (bars.lazy()
            .select(year=pl.col("date").dt.year(),
                    hash=pl.struct(sorted(bars.columns)).hash(seed=_SEED))
            .group_by("year")
            .agg(pl.len(), pl.col("hash").sum().alias("sum"),
                 pl.col("hash").bitwise_xor().alias("xor")))


def _by_year(digests: pl.DataFrame) -> dict[int, tuple[int, int, int]]:
    return {year: (n, total, xor) for year, n, total, xor in digests.iter_rows()}


_SEED = 0x5EED


def write_prices(txn: Transaction, bars: pl.DataFrame, *, meta: dict[str, Any],
                 previous: pl.DataFrame | None = None) -> list[str]:
    """Write `bars` as the prices of the transaction's version, with the index and its
    manifest entry holding `meta` plus rows, symbols, date range and sessions; return the
    names of the parts written. `previous`: the bars of the parent version, when the
    caller holds them; then only the years whose bars changed are written and the other
    parts are carried over (a parent in the single-file layout is written whole). The
    parent's prices.parquet is left out of the new version."""
    parent = txn.store.manifest(txn.parent) if txn.parent is not None else None
    years = None
    if previous is not None and parent is not None and dataset_parts(parent, PRICES_DATASET):
        years = changed_years(previous, bars)
    written = write_dataset(txn, PRICES_DATASET, bars, years=years, legacy=PRICES,
                            row_group_rows=ROW_GROUP_ROWS)
    stats = bars.select(rows=pl.len(), symbols=pl.col("symbol").n_unique(),
                        date_min=pl.col("date").min().cast(pl.String),
                        date_max=pl.col("date").max().cast(pl.String),
                        sessions=pl.col("date").n_unique()).row(0, named=True)
    write_index(txn, {**stats, **meta})
    return written


def write_index(txn: Transaction, meta: dict[str, Any]) -> None:
    """Write the index of the prices' parts the transaction holds, those written in it
    (each described with its `rows`) and those adopted from another version, with `meta`,
    and describe it with `meta` in the manifest. What `write_prices` does after writing the
    parts; a writer that streams the parts itself calls it last."""
    parts: dict[str, dict[str, Any]] = {}
    for name, source in txn.adopted.items():
        if name.startswith(f"{PRICES_DATASET}/"):
            entry = txn.store.manifest(source).files[name]
            parts[name] = {"rows": entry.meta("rows"), "sha256": entry.sha256}
    for name, described in txn.file_meta.items():
        if name.startswith(f"{PRICES_DATASET}/") and name not in txn.removed:
            parts[name] = {"rows": described["rows"], "sha256": sha256_file(txn.path(name))}
    index = {"dataset": PRICES_DATASET, **meta, "parts": dict(sorted(parts.items()))}
    atomic_write_json(txn.path(PRICES_INDEX), index)
    txn.describe(PRICES_INDEX, **meta)


def index_findings(store: Store, version: str) -> list[str]:
    """What is wrong between `version`'s prices index and its manifest: a part listed in
    the index that the manifest does not hold or holds with another sha256, or a part of
    the manifest the index does not list. Empty for a single-file version."""
    manifest = store.manifest(version)
    if PRICES_INDEX not in manifest.files:
        return []
    path = store.archive / version / PRICES_INDEX
    try:
        listed = json.loads(path.read_bytes())["parts"]
        assert isinstance(listed, dict)
    except (OSError, ValueError, KeyError, AssertionError) as exc:
        return [f"{PRICES_INDEX} of version {version}: unreadable ({type(exc).__name__})"]
    held = dataset_parts(manifest, PRICES_DATASET).values()
    found = [f"{PRICES_INDEX} lists {name}, which version {version} does not hold"
             for name in sorted(set(listed) - set(held))]
    found += [f"{name} of version {version} is not in its {PRICES_INDEX}"
              for name in sorted(set(held) - set(listed))]
    found += [f"{name} of version {version}: sha256 differs from its {PRICES_INDEX}"
              for name in sorted(set(held) & set(listed))
              if (listed[name] or {}).get("sha256") != manifest.files[name].sha256]
    return found

