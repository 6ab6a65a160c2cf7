"""The prices of a version as a dataset with an index (`aurora.store.bars`)."""

import datetime as dt
import json
import os
from pathlib import Path

import polars as pl
import pyarrow.dataset as pads
import pytest

from aurora.atomic import atomic_write_json, atomic_write_parquet
from aurora.errors import StoreError
from aurora.store import Store
from aurora.store.bars import changed_years, index_findings, price_paths, read_prices, write_prices
from aurora.store.files import PRICES, PRICES_INDEX


def _bars(first: str, last: str, symbols=("AAA", "BBB"), close: float = 10.0) -> pl.DataFrame:
    days = pl.date_range(dt.date.fromisoformat(first), dt.date.fromisoformat(last), "1d",
                         eager=True)
    rows = [(s, d, close + i, close + i, close + i, close + i, 100.0 * (k + 1))
            for i, d in enumerate(days) for k, s in enumerate(symbols)]
    frame = pl.DataFrame(rows, schema={"symbol": pl.String, "date": pl.Date, "open": pl.Float64,
                                       "high": pl.Float64, "low": pl.Float64,
                                       "close": pl.Float64, "volume": pl.Float64},
                         orient="row")
    return frame.sample(fraction=1.0, shuffle=True, seed=2)  # the writer sorts


def _publish(store: Store, bars: pl.DataFrame, previous: pl.DataFrame | None = None) -> str:
    with store.transaction("fetch", base=store.current_version()) as txn:
        write_prices(txn, bars, meta={"adjustment": "raw", "source_url": "http://x"},
                     previous=previous)
    version = store.current_version()
    assert version is not None
    return version


def test_parts_by_year_with_an_index_that_describes_them(data_dir: Path):
    store = Store(data_dir)
    bars = _bars("2016-12-30", "2018-01-02")
    version = _publish(store, bars)
    manifest = store.manifest(version)
    assert manifest.prices_name() == PRICES_INDEX
    entry = manifest.prices_entry()
    assert entry is not None
    assert (entry.meta("rows"), entry.meta("symbols")) == (bars.height, 2)
    assert (entry.meta("date_min"), entry.meta("date_max")) == ("2016-12-30", "2018-01-02")
    assert entry.meta("adjustment") == "raw" and entry.meta("sessions") == 369
    index = json.loads((store.archive / version / PRICES_INDEX).read_text())
    assert sorted(index["parts"]) == [f"prices/year={y}/part-0.parquet" for y in (2016, 2017,
                                                                                  2018)]
    assert all(index["parts"][n]["sha256"] == manifest.files[n].sha256 for n in index["parts"])
    assert sum(p["rows"] for p in index["parts"].values()) == bars.height
    assert index_findings(store, version) == []
    assert read_prices(store, version).equals(bars.sort("symbol", "date"))
    # pyarrow and polars read the directory with the year from the path, and prune by it
    hive = pads.dataset(store.archive / version / "prices", format="parquet",
                        partitioning="hive")
    assert hive.to_table(filter=pads.field("year") == 2017).num_rows == 730
    scan = pl.scan_parquet(store.archive / version / "prices", hive_partitioning=True)
    assert scan.filter(pl.col("year") == 2018).collect().height == 4


def test_a_date_range_opens_and_checks_only_its_years(data_dir: Path):
    store = Store(data_dir)
    version = _publish(store, _bars("2016-06-01", "2018-06-01"))
    part_2016 = store.archive / version / "prices/year=2016/part-0.parquet"
    os.chmod(part_2016, 0o600)
    part_2016.write_bytes(b"garbage")
    paths = price_paths(store, version, dt.date(2017, 3, 1), dt.date(2017, 4, 1))
    assert [p.parent.name for p in paths] == ["year=2017"]
    got = read_prices(store, version, start=dt.date(2017, 3, 1), end=dt.date(2018, 1, 1),
                      symbols=["BBB"])
    assert got["date"].min() == dt.date(2017, 3, 1) and got["symbol"].unique().to_list() == [
        "BBB"]
    with pytest.raises(StoreError, match=r"prices/year=2016/part-0.parquet of version .* does "
                                         r"not match its manifest"):
        read_prices(store, version)


def test_a_daily_fetch_rewrites_only_the_years_that_changed(data_dir: Path):
    store = Store(data_dir)
    old = _bars("2016-01-01", "2018-03-01")
    first = _publish(store, old)
    new = pl.concat([old, _bars("2018-03-02", "2018-03-05")])
    second = _publish(store, new, previous=old)
    before, after = store.manifest(first), store.manifest(second)
    for year in (2016, 2017):
        name = f"prices/year={year}/part-0.parquet"
        assert after.files[name].sha256 == before.files[name].sha256
        assert after.files[name].meta("adopted_from") == first
    name = "prices/year=2018/part-0.parquet"
    assert after.files[name].sha256 != before.files[name].sha256
    assert after.prices_entry() != before.prices_entry()
    assert read_prices(store, second).equals(new.sort("symbol", "date"))
    assert index_findings(store, second) == []
    # a restated bar in 2016 rewrites 2016 and nothing else
    restated = new.with_columns(pl.when((pl.col("date") == dt.date(2016, 5, 2))
                                        & (pl.col("symbol") == "AAA"))
                                .then(pl.col("close") * 2).otherwise(pl.col("close"))
                                .alias("close"))
    third = store.manifest(_publish(store, restated, previous=new))
    changed = {n for n in third.files if n.startswith("prices/")
               and third.files[n].sha256 != after.files[n].sha256}
    assert changed == {"prices/year=2016/part-0.parquet"}


def test_changed_years_sees_values_rows_and_columns():
    old = _bars("2016-12-30", "2017-01-03")
    assert changed_years(old, old.sample(fraction=1.0, shuffle=True, seed=5)) == set()
    assert changed_years(old, old.filter(pl.col("date") != dt.date(2017, 1, 2))) == {2017}
    assert changed_years(old, old.filter(pl.col("date").dt.year() == 2017)) == {2016}
    nudged = old.with_columns(pl.when(pl.col("date") == dt.date(2016, 12, 31))
                              .then(pl.col("volume") + 1).otherwise(pl.col("volume"))
                              .alias("volume"))
    assert changed_years(old, nudged) == {2016}
    assert changed_years(old, old.with_columns(vwap=pl.col("close"))) == {2016, 2017}


def test_a_single_file_version_stays_readable_and_is_replaced(data_dir: Path):
    store = Store(data_dir)
    bars = _bars("2017-01-01", "2017-02-01")
    with store.transaction("fetch", base=None) as txn:
        atomic_write_parquet(txn.path(PRICES), bars.sort("symbol", "date"))
        txn.describe(PRICES, rows=bars.height, adjustment="raw")
    old = store.current_version()
    assert old is not None and store.manifest(old).prices_name() == PRICES
    assert read_prices(store, old).equals(bars.sort("symbol", "date"))
    assert [p.name for p in price_paths(store, old)] == [PRICES]
    new = _publish(store, bars, previous=bars)  # written whole: the parent has no parts
    files = store.manifest(new).files
    assert PRICES not in files and "prices/year=2017/part-0.parquet" in files
    assert read_prices(store, new).equals(read_prices(store, old))


def test_an_index_that_disagrees_with_the_manifest_is_found(data_dir: Path):
    store = Store(data_dir)
    version = _publish(store, _bars("2016-06-01", "2017-06-01"))
    path = store.archive / version / PRICES_INDEX
    index = json.loads(path.read_text())
    index["parts"]["prices/year=2016/part-0.parquet"]["sha256"] = "0" * 64
    del index["parts"]["prices/year=2017/part-0.parquet"]
    index["parts"]["prices/year=2015/part-0.parquet"] = {"rows": 1, "sha256": "1" * 64}
    os.chmod(path, 0o600)
    path.write_text(json.dumps(index))
    found = index_findings(store, version)
    assert len(found) == 3
    assert "lists prices/year=2015/part-0.parquet, which version" in found[0]
    assert "prices/year=2017/part-0.parquet of version" in found[1]
    assert "sha256 differs" in found[2]


def test_no_prices_is_a_store_error_saying_what_to_run(data_dir: Path):
    store = Store(data_dir)
    with store.transaction("import", base=None) as txn:
        atomic_write_parquet(txn.path("sector_map.parquet"),
                             pl.DataFrame({"symbol": ["A"], "sector": ["X"]}))
    version = store.current_version()
    assert version is not None
    with pytest.raises(StoreError, match=r"holds no prices: run `aurora fetch` first"):
        read_prices(store, version)


def test_validate_checks_every_part_and_the_index(data_dir: Path):
    """`aurora validate` on a version of the prices dataset: clean, then a corrupted part
    is a checksum error naming it, and an index that disagrees with the manifest (written
    so, in one transaction) and a part holding another year's rows are reported."""
    from aurora.config import AuroraConfig
    from aurora.store.datasets import part_name
    from aurora.validation import validate_store

    config = AuroraConfig(data_dir=data_dir)
    store = Store(data_dir)
    bars = _bars("2016-12-01", "2017-02-01")
    _publish(store, bars)
    store_checks = {"checksum", "misplaced_rows", "unreadable", "missing_file", "unlisted_file"}
    assert not [f for f in validate_store(store, config).findings if f.check in store_checks]
    with store.transaction("fetch", base=store.current_version()) as txn:
        write_prices(txn, bars, meta={"adjustment": "raw"})
        index = json.loads(txn.path(PRICES_INDEX).read_text())
        index["parts"][part_name("prices", 2016)]["sha256"] = "0" * 64
        atomic_write_parquet(txn.path(part_name("prices", 2017)),
                             bars.filter(pl.col("date") >= dt.date(2016, 12, 30)))
        index["parts"][part_name("prices", 2017)]["sha256"] = "1" * 64
        atomic_write_json(txn.path(PRICES_INDEX), index)
    found = {(f.check, f.message.split(":")[0]) for f in validate_store(store, config).findings}
    assert ("checksum", f"{part_name('prices', 2016)} of version "
            f"{store.current_version()}") in found
    assert ("misplaced_rows", part_name("prices", 2017)) in found
    part = store.file_path(part_name("prices", 2016))
    os.chmod(part, 0o600)
    part.write_bytes(part.read_bytes()[:-10])
    errors = [f for f in validate_store(store, config).findings if f.check == "checksum"]
    assert any(f.message.startswith(f"{part_name('prices', 2016)}: checksum mismatch")
               for f in errors)
