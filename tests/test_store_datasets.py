"""Partitioned datasets in a store version (`aurora.store.datasets`)."""

import datetime as dt
from pathlib import Path

import polars as pl
import pyarrow.dataset as pads
import pytest

from aurora.atomic import atomic_write_parquet
from aurora.errors import StoreError
from aurora.schemas import FEATURES_TABLE
from aurora.store import Store
from aurora.store.datasets import (
    dataset_digest,
    dataset_parts,
    part_name,
    read_dataset,
    write_dataset,
)


def _panel(first: str, last: str, symbols=("AAA", "BBB")) -> pl.DataFrame:
    days = pl.date_range(dt.date.fromisoformat(first), dt.date.fromisoformat(last), "1d",
                         eager=True)
    rows = [(d, s, float(i * 10 + k)) for i, d in enumerate(days) for k, s in enumerate(symbols)]
    frame = pl.DataFrame(rows, schema={"date": pl.Date, "symbol": pl.String,
                                       "f_x": pl.Float64}, orient="row")
    return frame.sample(fraction=1.0, shuffle=True, seed=1)  # writers must sort


def _publish(store: Store, frame: pl.DataFrame, **kwargs) -> str:
    with store.transaction("build", base=store.current_version()) as txn:
        write_dataset(txn, "features", frame, **kwargs)
    version = store.current_version()
    assert version is not None
    return version


def test_parts_by_year_read_back_sorted_and_verified(data_dir: Path):
    store = Store(data_dir)
    frame = _panel("2016-12-30", "2018-01-02")
    version = _publish(store, frame)
    parts = dataset_parts(store.manifest(version), "features")
    assert list(parts) == [2016, 2017, 2018]
    assert parts[2017] == "features/year=2017/part-0.parquet"
    back = read_dataset(store, "features", version, FEATURES_TABLE)
    assert back.equals(frame.sort("symbol", "date"))
    assert store.verify(version) == []
    # hive layout: pyarrow reads the directory and finds the year from the path
    hive = pads.dataset(store.archive / version / "features", format="parquet",
                        partitioning="hive").to_table()
    assert hive.num_rows == frame.height and sorted(set(hive["year"].to_pylist())) == [
        2016, 2017, 2018]


def test_a_date_range_opens_only_its_years(data_dir: Path):
    store = Store(data_dir)
    version = _publish(store, _panel("2016-06-01", "2018-06-01"))
    # a corrupt part outside the range is never opened, one inside it is named
    (store.archive / version / part_name("features", 2016)).chmod(0o600)
    (store.archive / version / part_name("features", 2016)).write_bytes(b"garbage")
    got = read_dataset(store, "features", version, FEATURES_TABLE,
                       start=dt.date(2017, 3, 1), end=dt.date(2017, 3, 31), symbols=["BBB"])
    assert got["date"].min() == dt.date(2017, 3, 1) and got["date"].max() == dt.date(2017, 3, 31)
    assert got["symbol"].unique().to_list() == ["BBB"] and got.height == 31
    with pytest.raises(StoreError, match=r"features/year=2016/part-0.parquet of version .* "
                                         r"does not match its manifest"):
        read_dataset(store, "features", version, FEATURES_TABLE, start=dt.date(2016, 12, 1))
    problems = store.verify(version)
    assert problems == [f"features/year=2016/part-0.parquet: checksum mismatch in {version} "
                        "(file changed or corrupt)"]


def test_rewriting_one_year_keeps_the_other_parts_of_an_earlier_version(data_dir: Path):
    store = Store(data_dir)
    first = _publish(store, _panel("2016-01-01", "2017-12-29"))
    # a later stage (a fetch) publishes a version without the dataset
    with store.transaction("fetch", base=first) as txn:
        write_dataset(txn, "features", _panel("2016-01-01", "2016-01-01").clear())
        atomic_write_parquet(txn.path("prices.parquet"), pl.DataFrame({"a": [1]}))
    assert dataset_parts(store.manifest(), "features") == {}
    longer = _panel("2016-01-01", "2018-01-03")
    second = _publish(store, longer.filter(pl.col("date").dt.year() >= 2017),
                      years=[2017, 2018], base=first)
    manifest = store.manifest(second)
    assert list(dataset_parts(manifest, "features")) == [2016, 2017, 2018]
    old = store.manifest(first).files[part_name("features", 2016)]
    kept = manifest.files[part_name("features", 2016)]
    assert kept.sha256 == old.sha256 and kept.written_by == "build"
    assert read_dataset(store, "features", second, FEATURES_TABLE).equals(
        longer.sort("symbol", "date"))
    assert dataset_digest(manifest, "features") != dataset_digest(store.manifest(first),
                                                                  "features")
    fetched = store.versions()[1]
    with pytest.raises(StoreError, match=f"version {fetched} holds no parts to keep"):
        _publish(store, longer, years=[2018], base=fetched)


def test_a_single_file_version_stays_readable_and_is_replaced_whole(data_dir: Path):
    store = Store(data_dir)
    frame = _panel("2017-12-20", "2018-01-05")
    with store.transaction("build", base=None) as txn:
        atomic_write_parquet(txn.path("features.parquet"), frame.sort("symbol", "date"))
    legacy = store.current_version()
    got = read_dataset(store, "features", legacy, FEATURES_TABLE, legacy="features.parquet",
                       start=dt.date(2018, 1, 1))
    assert got.equals(frame.filter(pl.col("date") >= dt.date(2018, 1, 1)).sort("symbol", "date"))
    assert dataset_digest(store.manifest(legacy), "features", "features.parquet") == \
        store.manifest(legacy).files["features.parquet"].sha256
    with pytest.raises(StoreError, match="holds no parts to keep"):
        _publish(store, frame, years=[2018], legacy="features.parquet")
    version = _publish(store, frame, legacy="features.parquet")
    assert "features.parquet" not in store.manifest(version).files
    assert list(dataset_parts(store.manifest(version), "features")) == [2017, 2018]


def test_part_names_are_checked(data_dir: Path):
    store = Store(data_dir)
    with store.transaction("x", base=None) as txn:
        for bad in ("features/../x.parquet", "a/b/c/d.parquet", "/abs.parquet",
                    "features/.hidden/p.parquet", "features/year=2018/"):
            with pytest.raises(StoreError, match="unsafe store file name"):
                txn.path(bad)
        txn.path("features/year=2018/part-0.parquet").write_bytes(b"x")


def test_a_dataset_name_is_never_a_file_name(data_dir: Path):
    store = Store(data_dir)
    with store.transaction("x", base=None) as txn:
        for bad in ("manifest.json/year=2018/part-0.parquet",
                    "prices.parquet/year=2018/part-0.parquet", "Features/year=2018/p.parquet"):
            with pytest.raises(StoreError, match="unsafe store file name"):
                txn.path(bad)
        with pytest.raises(StoreError, match="unsafe store file name"):
            txn.remove("../../victim.txt")


def test_removing_a_dataset_drops_its_staged_parts_but_not_later_adoptions(data_dir: Path):
    store = Store(data_dir)
    first = _publish(store, _panel("2017-12-28", "2018-01-03"))
    with store.transaction("build", base=first) as txn:
        write_dataset(txn, "features", _panel("2019-01-02", "2019-01-03"))
        txn.remove("features")  # the staged 2019 part and the parent's parts
        txn.adopt(part_name("features", 2017), first)
    assert list(dataset_parts(store.manifest(), "features")) == [2017]
    assert not (store.latest / "features" / "year=2019").exists()


def test_adopted_parts_end_up_sharing_their_source_inode(data_dir: Path):
    """build (2017, 2018) -> fetch without features -> build adopting 2017 -> fetch: the
    second build's 2017 part becomes a hard link to the first build's, as an inherited file
    becomes one to its parent's."""
    store = Store(data_dir)
    frame = _panel("2017-12-20", "2018-01-05")
    first = _publish(store, frame)
    for step in range(2):
        with store.transaction("fetch", base=store.current_version()) as txn:
            txn.remove("features")
            atomic_write_parquet(txn.path("prices.parquet"), pl.DataFrame({"a": [step]}))
        if step == 0:
            second = _publish(store, frame.filter(pl.col("date").dt.year() == 2018),
                              years=[2018], base=first)
    name = part_name("features", 2017)
    assert store.manifest(second).files[name].meta("adopted_from") == first
    assert (store.archive / first / name).stat().st_ino == \
        (store.archive / second / name).stat().st_ino
    assert store.verify(second) == [] and store.verify(first) == []


def test_parts_without_their_build_record_are_never_current(data_dir: Path):
    store = Store(data_dir)
    with store.transaction("import", base=None) as txn:
        atomic_write_parquet(txn.path("prices.parquet"), pl.DataFrame({"a": [1]}))
        write_dataset(txn, "features", _panel("2018-01-02", "2018-01-03"))
    assert "do not record the prices they were built from" in \
        store.manifest().features_from_other_prices()
