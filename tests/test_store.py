import os
from pathlib import Path

import polars as pl
import pytest

from aurora.atomic import atomic_write_parquet
from aurora.errors import ConfigError, StoreError
from aurora.store import Store


def _write(store: Store, stage: str, **frames: pl.DataFrame) -> str:
    with store.transaction(stage, base=store.current_version(), params={"k": 1}) as txn:
        for name, frame in frames.items():
            atomic_write_parquet(txn.path(f"{name}.parquet"), frame)
            txn.describe(f"{name}.parquet", rows=frame.height)
    version = store.current_version()
    assert version is not None
    return version


def test_empty_store(data_dir: Path):
    store = Store(data_dir)
    assert store.current_version() is None
    assert store.latest_file("prices.parquet") is None
    assert store.verify() == []


def test_publish_inherits_unchanged_files(data_dir: Path):
    store = Store(data_dir)
    v1 = _write(store, "fetch", prices=pl.DataFrame({"a": [1, 2]}))
    v2 = _write(store, "build", features=pl.DataFrame({"b": [3]}))
    assert v1 != v2 and store.versions() == [v1, v2]
    manifest = store.manifest()
    assert manifest.parent == v1 and manifest.stage == "build"
    assert set(manifest.files) == {"prices.parquet", "features.parquet"}
    assert manifest.files["prices.parquet"].meta("rows") == 2
    assert manifest.files["prices.parquet"].written_by == "fetch"
    assert pl.read_parquet(data_dir / "latest" / "prices.parquet")["a"].to_list() == [1, 2]
    assert store.verify() == []


def test_failed_transaction_leaves_latest_untouched(data_dir: Path):
    store = Store(data_dir)
    v1 = _write(store, "fetch", prices=pl.DataFrame({"a": [1]}))
    with pytest.raises(RuntimeError), \
            store.transaction("fetch", base=store.current_version()) as txn:
        atomic_write_parquet(txn.path("prices.parquet"), pl.DataFrame({"a": [9]}))
        raise RuntimeError("boom")
    assert store.current_version() == v1
    assert store.versions() == [v1]
    assert not [p for p in (data_dir / "archive").iterdir() if p.name.startswith(".")]


def test_checksum_mismatch_is_reported(data_dir: Path):
    store = Store(data_dir)
    _write(store, "fetch", prices=pl.DataFrame({"a": [1]}))
    (data_dir / "latest" / "prices.parquet").write_bytes(b"garbage")
    assert store.verify() == [
        f"prices.parquet: checksum mismatch in {store.current_version()} (file changed or corrupt)"
    ]


def test_paths_cannot_escape_the_data_dir(data_dir: Path):
    store = Store(data_dir)
    assert store.inside("universe/top300.txt") == (data_dir / "universe/top300.txt").resolve()
    with pytest.raises(ConfigError, match="escapes the data directory"):
        store.inside("../../etc/passwd")
    with pytest.raises(StoreError), store.transaction("x", base=store.current_version()) as txn:
        txn.path("../evil")


def test_lock_is_exclusive(data_dir: Path):
    store = Store(data_dir)
    with store.lock(), pytest.raises(StoreError, match="locked by another"), Store(data_dir).lock():
        pass


def test_leftover_staging_is_cleaned(data_dir: Path):
    store = Store(data_dir)
    _write(store, "fetch", prices=pl.DataFrame({"a": [1]}))
    junk = data_dir / "archive" / ".staging-dead"
    junk.mkdir()
    (junk / "prices.parquet").write_bytes(b"partial")
    _write(store, "build", features=pl.DataFrame({"b": [1]}))
    assert not junk.exists()
    assert os.path.islink(data_dir / "latest")
