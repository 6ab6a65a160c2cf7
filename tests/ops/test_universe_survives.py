"""The universe lives in every version's manifest, so it survives retention, a deleted
intermediate version and a restore onto a new host (no fall-back to the built-in 130)."""

from __future__ import annotations

import datetime as dt
import shutil

import polars as pl
from ops_helpers import publish

from aurora.config import AuroraConfig
from aurora.ops.backup import backup_store, restore_version
from aurora.ops.retention import prune
from aurora.store import Store
from aurora.universe import resolve_universe
from aurora.validation import validate_store

SYMBOLS = ("ZZA", "ZZB")  # not in the built-in universe
TODAY = dt.date(2024, 3, 22)


def _prices() -> pl.DataFrame:
    dates = [dt.date(2024, 3, 18) + dt.timedelta(days=i) for i in range(5)]  # Mon..Fri
    rows = [(d, s, 10.0 + i, 11.0 + i, 9.0 + i, 10.5 + i, 1e6, 10.2 + i, 100)
            for s in SYMBOLS for i, d in enumerate(dates)]
    return pl.DataFrame(rows, orient="row", schema={
        "date": pl.Date, "symbol": pl.String, "open": pl.Float64, "high": pl.Float64,
        "low": pl.Float64, "close": pl.Float64, "volume": pl.Float64, "vwap": pl.Float64,
        "trade_count": pl.Int64})


def _store(root) -> Store:
    store = Store(root)
    publish(store, "fetch", **{"prices.parquet": _prices()})  # records SYMBOLS
    publish(store, "build", **{"note.json": {"built": True}})
    publish(store, "predict", **{"other.json": {"ranked": True}})
    return store


def _checks(store: Store) -> tuple[list[str], tuple[str, ...]]:
    config = AuroraConfig(data_dir=store.root)
    report = validate_store(store, config, today=TODAY)
    return [f.check for f in report.errors], resolve_universe(config, store).symbols


def test_after_prune_to_one_version(data_dir):
    store = _store(data_dir)
    prune(store, keep_versions=1)
    assert len(store.versions()) == 1
    assert _checks(store) == ([], SYMBOLS)


def test_after_an_intermediate_version_is_deleted(data_dir):
    store = _store(data_dir)
    shutil.rmtree(store.archive / store.versions()[1])
    assert _checks(store) == ([], SYMBOLS)


def test_after_a_restore_onto_a_new_host(data_dir, tmp_path):
    store = _store(data_dir)
    backup_store(store, str(tmp_path / "backup"))
    fresh = Store(tmp_path / "new-host" / "data")
    restore_version(fresh, str(tmp_path / "backup"))
    assert _checks(fresh) == ([], SYMBOLS)
