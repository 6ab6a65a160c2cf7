"""A partitioned version written to an S3 API (moto's server on 127.0.0.1, over HTTP)
through fsspec and read back (`aurora.store.remote`)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from aurora.errors import StoreError
from aurora.schemas import FEATURES_TABLE
from aurora.store import Store
from aurora.store.datasets import read_dataset, write_dataset
from aurora.store.remote import RemoteVersion, export_version


def _panel() -> pl.DataFrame:
    days = pl.date_range(dt.date(2016, 12, 1), dt.date(2018, 2, 1), "1d", eager=True)
    return pl.DataFrame([(d, s, float(i) + k / 10) for i, d in enumerate(days)
                         for k, s in enumerate(("AAA", "BBB", "CCC"))],
                        schema={"date": pl.Date, "symbol": pl.String, "f_x": pl.Float64},
                        orient="row")


def test_a_partitioned_version_goes_to_s3_and_comes_back(data_dir: Path, s3):
    store = Store(data_dir)
    with store.transaction("build", base=None) as txn:
        write_dataset(txn, "features", _panel())
    version = store.current_version()
    url = "s3://aurora/stores/team-a"
    copied = export_version(store, version, url, s3)
    assert copied == [f"features/year={y}/part-0.parquet" for y in (2016, 2017, 2018)]
    assert export_version(store, version, url, s3) == []  # already there, same sha256

    remote = RemoteVersion(url, version, s3)
    assert remote.manifest == store.manifest(version)
    local = read_dataset(store, "features", version, FEATURES_TABLE)
    assert remote.read_dataset("features", FEATURES_TABLE).equals(local)
    some = remote.read_dataset("features", FEATURES_TABLE, start=dt.date(2017, 6, 1),
                               end=dt.date(2017, 6, 30), symbols=["BBB"])
    assert some.equals(local.filter(pl.col("date").is_between(dt.date(2017, 6, 1),
                                                              dt.date(2017, 6, 30))
                                    & (pl.col("symbol") == "BBB")))
    assert some.height == 30


def test_a_changed_part_on_s3_is_named_and_never_read(data_dir: Path, s3):
    import fsspec

    store = Store(data_dir)
    with store.transaction("build", base=None) as txn:
        write_dataset(txn, "features", _panel())
    version = store.current_version()
    url = "s3://aurora/stores/team-b"
    export_version(store, version, url, s3)
    fs = fsspec.filesystem("s3", **s3)
    fs.pipe_file(f"aurora/stores/team-b/archive/{version}/features/year=2016/part-0.parquet",
                 b"not parquet")
    remote = RemoteVersion(url, version, s3)
    assert remote.read_dataset("features", FEATURES_TABLE, start=dt.date(2017, 1, 1)).height
    with pytest.raises(StoreError) as failure:
        remote.read_dataset("features", FEATURES_TABLE)
    message = str(failure.value)
    assert "features/year=2016/part-0.parquet of version" in message
    assert "does not match its manifest" in message and "s3-secret-value" not in message
    # the next export repairs it
    assert export_version(store, version, url, s3) == ["features/year=2016/part-0.parquet"]
    assert RemoteVersion(url, version, s3).read_dataset("features", FEATURES_TABLE).height


def test_a_shared_directory_works_too_and_bad_locations_are_refused(data_dir: Path,
                                                                    tmp_path: Path):
    store = Store(data_dir)
    with store.transaction("build", base=None) as txn:
        write_dataset(txn, "features", _panel())
    first = store.current_version()
    with store.transaction("build", base=first) as txn:
        write_dataset(txn, "features", _panel().filter(pl.col("date").dt.year() == 2018))
    second = store.current_version()
    shared = tmp_path / "shared"
    for version in (first, second):
        export_version(store, version, str(shared))
    back = RemoteVersion(f"file://{shared}", first).read_dataset("features", FEATURES_TABLE)
    assert back.equals(read_dataset(store, "features", first, FEATURES_TABLE))
    # a manifest copied under another version's name is refused
    (shared / "archive" / first / "manifest.json").write_bytes(
        (shared / "archive" / second / "manifest.json").read_bytes())
    with pytest.raises(StoreError, match=f"is the one of version {second}"):
        RemoteVersion(str(shared), first)
    with pytest.raises(StoreError, match="no query or fragment") as failure:
        RemoteVersion("s3://bucket/store?token=abcSECRET", first)
    assert "abcSECRET" not in str(failure.value)
