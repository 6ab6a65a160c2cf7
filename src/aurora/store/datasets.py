"""Partitioned datasets inside a store version: one Parquet file per calendar year.

A dataset `features` of a version is the files `features/year=2016/part-0.parquet`,
`features/year=2017/part-0.parquet`, ... (hive-style: polars, pyarrow and DuckDB read the
directory with `hive_partitioning`), each listed in the manifest with its sha256 like any
other file. A part holds the rows whose `date` falls in its year, sorted by (symbol, date),
with the columns of the whole dataset (no `year` column: the directory names it).

Versions written before datasets hold one file instead (`features.parquet`);
`read_dataset` reads either, so they stay readable.

Contract of `read_dataset`: only the parts whose year overlaps [start, end] are opened,
each checked against its manifest sha256 first (StoreError naming the part when it does
not match), and a symbol set is pushed down into the Parquet scan. The rows come back
sorted by (symbol, date), as a single-file version returns them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Literal

import polars as pl

from aurora.atomic import atomic_write_parquet
from aurora.errors import DataValidationError, StoreError, first_line
from aurora.schemas import FEATURES_TABLE, TableSchema, check_schema, sorted_by_key
from aurora.store.files import FEATURES, FEATURES_DATASET
from aurora.store.manifest import Manifest
from aurora.store.versions import Store, Transaction

PART_FILE = "part-0.parquet"
_PART = re.compile(r"(?P<dataset>[A-Za-z0-9_]+)/year=(?P<year>[0-9]{4})/" + re.escape(PART_FILE))


def part_name(dataset: str, year: int) -> str:
    """The store name of `dataset`'s part for `year`."""
    return f"{dataset}/year={year:04d}/{PART_FILE}"


def dataset_parts(manifest: Manifest, dataset: str) -> dict[int, str]:
    """Year -> store name of each part of `dataset` in `manifest` (empty when it holds none)."""
    found = {}
    for name in manifest.files:
        match = _PART.fullmatch(name)
        if match and match["dataset"] == dataset:
            found[int(match["year"])] = name
    return dict(sorted(found.items()))


def parts_between(manifest: Manifest, dataset: str, start: dt.date | None,
                  end: dt.date | None) -> list[str]:
    """The names of `dataset`'s parts whose year overlaps [start, end] (None: open)."""
    return [name for year, name in dataset_parts(manifest, dataset).items()
            if (start is None or year >= start.year) and (end is None or year <= end.year)]


def dataset_digest(manifest: Manifest, dataset: str, legacy: str | None = None) -> str | None:
    """One sha256 for the whole dataset: of its parts' names and sha256s, or the sha256 of
    the single file `legacy` in a version written before datasets; None when absent."""
    parts = dataset_parts(manifest, dataset)
    if not parts:
        entry = manifest.file(legacy) if legacy else None
        return entry.sha256 if entry is not None else None
    digest = hashlib.sha256()
    for name in parts.values():
        digest.update(f"{name}\0{manifest.files[name].sha256}\n".encode())
    return digest.hexdigest()


def has_dataset(manifest: Manifest, dataset: str, legacy: str | None = None) -> bool:
    """Whether `manifest` holds `dataset`, as parts or as the single file `legacy`."""
    return bool(dataset_parts(manifest, dataset)) or (legacy is not None
                                                      and legacy in manifest.files)


def write_dataset(txn: Transaction, dataset: str, frame: pl.DataFrame, *,
                  years: Collection[int] | None = None, base: str | None = None,
                  legacy: str | None = None,
                  compression: Literal["zstd", "lz4"] = "zstd",
                  row_group_rows: int | None = None) -> list[str]:
    """Write `frame` (with a Date column `date`) as `dataset`'s parts; return their names.

    years None: the dataset is replaced whole. Otherwise only the parts of those years are
    written, from the rows of `frame` in them, and the other parts of version `base`
    (default: the transaction's parent) are carried over unchanged (`Transaction.adopt`):
    a daily build rewrites one year. A year without rows has no part. The parent's single
    file `legacy` and its parts not carried over are left out of the new version.
    StoreError when `years` is given and `base` holds no parts (write it whole once).
    Each part's rows are sorted by (symbol, date), in row groups of `row_group_rows`
    (None: polars' default).
    """
    if frame.schema.get("date") != pl.Date:
        raise StoreError(f"dataset {dataset}: needs a Date column `date` to partition by year")
    store = txn.store
    parent = dataset_parts(store.manifest(txn.parent), dataset) if txn.parent else {}
    if years is None:
        chosen, kept = set(frame.get_column("date").dt.year().unique().to_list()), {}
    else:
        source = base or txn.parent
        kept = dataset_parts(store.manifest(source), dataset) if source else {}
        if not kept:
            raise StoreError(f"dataset {dataset}: version {source} holds no parts to keep; "
                             "write the whole dataset (years=None)")
        chosen = set(years)
        kept = {year: name for year, name in kept.items() if year not in chosen}
        for name in kept.values():
            txn.adopt(name, str(source))
    _leave_out_parent(txn, dataset, parent, kept, legacy)
    written = []
    for year in sorted(chosen):
        rows = frame.filter(pl.col("date").dt.year() == year)
        if rows.height == 0:
            continue
        name = part_name(dataset, year)
        atomic_write_parquet(txn.path(name), sorted_by_key(rows), compression=compression,
                             row_group_rows=row_group_rows)
        txn.describe(name, rows=rows.height)
        written.append(name)
    return written


def place_parts(txn: Transaction, dataset: str, parts: Mapping[int, tuple[Path, int]], *,
                legacy: str | None = None) -> list[str]:
    """Replace `dataset` whole with part files already written elsewhere on the store's
    filesystem (year -> (path, rows)): each is moved into the transaction (a rename, no
    copy) and described with its row count; the parent's parts and single file `legacy`
    are left out. What an out-of-core build does with the parts its tasks wrote."""
    parent = dataset_parts(txn.store.manifest(txn.parent), dataset) if txn.parent else {}
    _leave_out_parent(txn, dataset, parent, {}, legacy)
    placed = []
    for year, (path, rows) in sorted(parts.items()):
        name = part_name(dataset, year)
        os.replace(path, txn.path(name))
        txn.describe(name, rows=rows)
        placed.append(name)
    return placed


def _leave_out_parent(txn: Transaction, dataset: str, parent: Mapping[int, str],
                      kept: Mapping[int, str], legacy: str | None) -> None:
    if legacy is not None:
        txn.remove(legacy)
    for year, name in parent.items():
        if year not in kept:
            txn.remove(name)


def dataset_paths(store: Store, dataset: str, version: str, schema: TableSchema, *,
                  legacy: str | None = None, start: dt.date | None = None,
                  end: dt.date | None = None, hint: str | None = None) -> list[Path]:
    """The files of `dataset` in `version` whose year overlaps [start, end] (an empty range
    still gives one part, for the schema; a version without parts gives its single file
    `legacy`), each checked against its manifest sha256 and `schema`.

    StoreError (with `hint`, what to run) when the version holds neither the dataset nor
    `legacy`, or naming a file that does not match its manifest; DataValidationError when
    a file does not have `schema`.
    """
    manifest = store.manifest(version)
    parts = dataset_parts(manifest, dataset)
    if parts:
        names = parts_between(manifest, dataset, start, end) or [next(iter(parts.values()))]
    elif legacy is not None and legacy in manifest.files:
        names = [legacy]
    else:
        raise StoreError(f"version {version} holds no {dataset}"
                         + (f": {hint}" if hint else ""))
    paths = []
    for name in names:
        path = store.verified_path(name, version, hint=hint if name == legacy else None)
        assert path is not None
        check_schema(path, schema, f"{name} of version {version}")
        paths.append(path)
    return paths


def read_files(paths: Sequence[Path], where: str, *, start: dt.date | None = None,
               end: dt.date | None = None, symbols: Collection[str] | None = None,
               sort: bool = True) -> pl.DataFrame:
    """The rows of checked files `paths` (a dataset's parts, or one file) dated within
    [start, end] and of `symbols` (None: all; pushed down into the Parquet scan), sorted by
    (symbol, date) like each file (`sort=False`: the files' rows one after the other, for a
    reader to whom order does not matter: sorting a panel costs more than reading it).
    DataValidationError naming `where` when a file cannot be decoded."""
    scan = pl.scan_parquet(list(paths), hive_partitioning=False)
    if start is not None:
        scan = scan.filter(pl.col("date") >= start)
    if end is not None:
        scan = scan.filter(pl.col("date") <= end)
    if symbols is not None:
        scan = scan.filter(pl.col("symbol").is_in(sorted(set(symbols))))
    try:
        frame = scan.collect()
    except (OSError, pl.exceptions.PolarsError) as exc:
        first = first_line(exc)
        raise DataValidationError(f"{where}: unreadable Parquet ({first})") from None
    return frame if len(paths) == 1 or not sort else sorted_by_key(frame)


def read_dataset(store: Store, dataset: str, version: str, schema: TableSchema, *,
                 legacy: str | None = None, start: dt.date | None = None,
                 end: dt.date | None = None, symbols: Collection[str] | None = None,
                 hint: str | None = None, sort: bool = True) -> pl.DataFrame:
    """The rows of `dataset` in `version` dated within [start, end] (each bound optional)
    and of `symbols` (None: all), sorted by (symbol, date) unless `sort` is False:
    `read_files` over `dataset_paths`, with their errors."""
    paths = dataset_paths(store, dataset, version, schema, legacy=legacy, start=start,
                          end=end, hint=hint)
    return read_files(paths, f"{dataset} of version {version}", start=start, end=end,
                      symbols=symbols, sort=sort)


def read_features(store: Store, version: str | None = None, *, start: dt.date | None = None,
                  end: dt.date | None = None, symbols: Collection[str] | None = None
                  ) -> pl.DataFrame:
    """The feature panel of `version` (default: latest), as `read_dataset` reads it, from
    the features dataset or a single-file version's features.parquet. StoreError saying to
    run `aurora build` when the version holds neither."""
    version = version or store.current_version()
    if version is None:
        raise StoreError(f"{store.root}: the store is empty (run `aurora fetch` first)")
    return read_dataset(store, FEATURES_DATASET, version, FEATURES_TABLE, legacy=FEATURES,
                        start=start, end=end, symbols=symbols, hint="run `aurora build` first")
