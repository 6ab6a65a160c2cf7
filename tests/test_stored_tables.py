"""Stored Parquet tables of another schema behind a matching manifest: every stage that reads
one (build, predict, fetch) fails with one line naming the file, the version and the column;
`aurora validate` reports non-finite values in a stored fundamentals.parquet."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from aurora.atomic import atomic_write_bytes, atomic_write_parquet
from aurora.config import AuroraConfig
from aurora.errors import DataValidationError
from aurora.features.builder import load_inputs as build_inputs
from aurora.fetch.publish import load_stored
from aurora.fetch.source import PriceSource
from aurora.predict.api import load_inputs as predict_inputs
from aurora.schemas import FEATURES_TABLE, PRICES_TABLE, TableSchema, read_table
from aurora.store import Store, UniverseRecord
from aurora.validation import validate_store

D = dt.date(2024, 1, 2)


def prices(**changes: pl.Expr) -> pl.DataFrame:
    """Two clean bars (the stored price schema) with `changes` applied."""
    frame = pl.DataFrame({
        "date": [D, D + dt.timedelta(days=1)], "symbol": ["AAA", "AAA"],
        "open": [10.0, 10.5], "high": [11.0, 11.0], "low": [9.5, 10.0], "close": [10.5, 10.8],
        "volume": [1e6, 1.2e6], "vwap": [10.4, 10.6], "trade_count": [100, 120]},
        schema_overrides={"trade_count": pl.Int64})
    return frame.with_columns(**changes) if changes else frame


def publish(store: Store, **files: pl.DataFrame | bytes) -> str:
    """One version holding `files`, recorded as fetched raw, feed sip."""
    with store.transaction("fetch", base=store.current_version(),
                           universe=UniverseRecord(symbols=("AAA",), source="test")) as txn:
        for name, content in files.items():
            if isinstance(content, bytes):
                atomic_write_bytes(txn.path(name), content)
            else:
                atomic_write_parquet(txn.path(name), content)
        txn.describe("prices.parquet", adjustment="raw", feed="sip")
    version = store.current_version()
    assert version is not None
    return version


def one_line(info: pytest.ExceptionInfo) -> str:
    message = str(info.value)
    assert "\n" not in message
    return message


def test_read_table_names_file_version_and_column(tmp_path: Path):
    path = tmp_path / "prices.parquet"
    prices(close=pl.col("close").cast(pl.String)).drop("volume").write_parquet(path)
    with pytest.raises(DataValidationError) as info:
        read_table(path, PRICES_TABLE, "version V1")
    assert one_line(info) == ("prices.parquet of version V1: missing column volume (+1 more "
                              "problem(s)): not the schema Aurora writes")
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DataValidationError, match=r"^prices.parquet of version V1: unreadable "
                                                  r"Parquet \("):
        read_table(path, PRICES_TABLE, "version V1")
    features = tmp_path / "features.parquet"
    pl.DataFrame({"date": [D], "symbol": ["AAA"], "f_a": [1.0], "f_b": [1]}).write_parquet(
        features)
    with pytest.raises(DataValidationError, match="column f_b has dtype Int64, expected Float64"):
        read_table(features, FEATURES_TABLE, "version V1")
    assert read_table(features, TableSchema(required={"date": pl.Date()}), "v").height == 1


@pytest.mark.parametrize(("name", "frame", "column"), [
    ("prices.parquet", prices(close=pl.col("close").cast(pl.String)), "close"),
    ("prices.parquet", prices().drop("volume"), "volume"),
    ("sector_map.parquet", pl.DataFrame({"symbol": ["AAA"]}), "sector"),
    ("fundamentals.parquet", pl.DataFrame({"symbol": ["AAA"], "as_of": ["2024-01-02"],
                                           "market_cap": [1e9]}), "as_of"),
    ("corporate_actions.parquet", pl.DataFrame({"id": ["x"], "symbol": ["AAA"]}),
     "action_type"),
])
def test_build_refuses_a_table_of_another_schema(data_dir, name, frame, column):
    store = Store(data_dir)
    files = {"prices.parquet": prices(), name: frame}
    version = publish(store, **files)
    with pytest.raises(DataValidationError) as info:
        build_inputs(store)
    message = one_line(info)
    assert message.startswith(f"{name} of version {version}: ") and column in message


def test_predict_refuses_features_or_prices_of_another_schema(data_dir):
    store = Store(data_dir)
    features = pl.DataFrame({"date": [D], "symbol": ["AAA"], "f_ret": ["0.1"]})
    version = publish(store, **{"prices.parquet": prices(), "features.parquet": features})
    with pytest.raises(DataValidationError) as info:
        predict_inputs(store)
    assert one_line(info) == (f"features.parquet of version {version}: column f_ret has dtype "
                              "String, expected Float64: not the schema Aurora writes")
    good = features.with_columns(pl.col("f_ret").cast(pl.Float64))
    version = publish(store, **{"features.parquet": good,
                                "prices.parquet": prices().drop("close")})
    with pytest.raises(DataValidationError, match=rf"^prices.parquet of version {version}: "
                                                  "missing column close"):
        predict_inputs(store)


def test_an_incremental_fetch_refuses_stored_tables_of_another_schema(data_dir):
    store = Store(data_dir)
    source = PriceSource(None, "sip", "raw")
    version = publish(store, **{"prices.parquet": prices(volume=pl.lit("many"))})
    with pytest.raises(DataValidationError, match=rf"^prices.parquet of version {version}: "
                                                  "column volume has dtype String"):
        load_stored(store, source)
    version = publish(store, **{"prices.parquet": prices(),
                                "corporate_actions.parquet": pl.DataFrame({"id": ["x"]})})
    with pytest.raises(DataValidationError, match=rf"^corporate_actions.parquet of version "
                                                  rf"{version}: missing column action_type"):
        load_stored(store, source)


def test_validate_reports_non_finite_stored_fundamentals(data_dir):
    store = Store(data_dir)
    fundamentals = pl.DataFrame({
        "symbol": ["AAA", "AAA", "BBB"], "as_of": [D, D + dt.timedelta(days=30), D],
        "market_cap": [1e9, float("inf"), float("nan")], "eps": [1.0, 2.0, 3.0]})
    publish(store, **{"prices.parquet": prices(), "fundamentals.parquet": fundamentals})
    report = validate_store(store, AuroraConfig(data_dir=data_dir), today=dt.date(2024, 2, 1))
    [finding] = [f for f in report.findings if f.check == "non_finite"]
    assert (finding.severity, finding.symbol, finding.count) == ("error", "AAA", 2)
    assert finding.message == ("fundamentals.parquet: market_cap is NaN or inf on 2 row(s), "
                               "first AAA as_of 2024-02-01 (inf); import the file again with "
                               "finite values")
    assert not report.ok


@pytest.mark.parametrize("order", ["sorted", "reversed", "shuffled"])
def test_duplicate_keys_are_found_in_any_row_order(order):
    """Rows in strictly increasing key order are unique at a glance; any other order, an
    adjacent repeat and a repeated null key go through the general check."""
    from aurora.schemas import find_duplicate_keys

    days = [dt.date(2020, 1, 2), dt.date(2020, 1, 3), dt.date(2020, 1, 6)]
    unique = pl.DataFrame({"symbol": ["A", "A", "A", "B", "B"],
                           "date": [*days, days[0], days[2]], "x": [1.0, 2, 3, 4, 5]})
    repeated = pl.concat([unique, unique.slice(3, 1).with_columns(x=pl.lit(9.0))])

    def arranged(frame: pl.DataFrame) -> pl.DataFrame:
        ordered = frame.sort("symbol", "date", maintain_order=True)
        return {"sorted": ordered, "reversed": ordered.reverse(),
                "shuffled": ordered.sample(fraction=1.0, shuffle=True, seed=3)}[order]

    assert find_duplicate_keys(arranged(unique)) is None
    found = find_duplicate_keys(arranged(repeated))
    assert found is not None
    assert found.message() == ("1 duplicated (symbol, date) key(s), 1 surplus row(s), first B "
                               "on 2020-01-02 (1 with conflicting values, first B on 2020-01-02)")
    nulls = pl.DataFrame({"symbol": ["A", "A"], "date": [None, None]},
                         schema={"symbol": pl.String, "date": pl.Date})
    assert find_duplicate_keys(nulls) is not None
