"""validate_store: checksums, file checks, universe lookup; `aurora validate` exit codes."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from aurora.atomic import atomic_write_bytes, atomic_write_parquet, atomic_write_text
from aurora.cli.main import main
from aurora.config import AuroraConfig, ValidationConfig
from aurora.errors import StoreError
from aurora.store import Store, UniverseRecord
from aurora.store.datasets import write_dataset
from aurora.validation import validate_store

TODAY = dt.date(2024, 12, 31)


@pytest.fixture()
def prices(clean) -> pl.DataFrame:
    return clean


def publish(store: Store, files: dict, params: dict | None = None, meta: dict | None = None):
    with store.transaction("fetch", base=store.current_version(), params=params or {}) as txn:
        for name, content in files.items():
            if isinstance(content, pl.DataFrame):
                atomic_write_parquet(txn.path(name), content)
            elif isinstance(content, bytes):
                atomic_write_bytes(txn.path(name), content)
            else:
                atomic_write_text(txn.path(name), content)
        for name, m in (meta or {}).items():
            txn.describe(name, **m)


def config_for(data_dir, **validation) -> AuroraConfig:
    return AuroraConfig(data_dir=data_dir, validation=ValidationConfig(**validation))


def corrupt(store: Store, name: str) -> None:
    path = store.file_path(name)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_clean_store_is_ok(data_dir, prices):
    store = Store(data_dir)
    publish(store, {"prices.parquet": prices}, params={"universe": ["AAA", "BBB"]})
    report = validate_store(store, config_for(data_dir), today=TODAY)
    assert report.findings == [] and report.ok
    # a manifest written before universes were recorded: the fetch's params.universe
    assert report.stats["universe_source"] == f"fetch {store.current_version()}"
    assert report.stats["version"] == store.current_version()
    assert {"checksum", "large_move"} <= set(report.to_dict()["checks"])


def test_corrupted_file_is_a_checksum_mismatch(data_dir, prices):
    store = Store(data_dir)
    publish(store, {"prices.parquet": prices}, params={"universe": ["AAA", "BBB"]})
    corrupt(store, "prices.parquet")
    report = validate_store(store, config_for(data_dir), today=TODAY)
    assert not report.ok
    checksum = [f for f in report.errors if f.check == "checksum"]
    assert len(checksum) == 1
    assert checksum[0].message.startswith("prices.parquet: checksum mismatch")


def test_missing_and_unlisted_files(data_dir, prices):
    store = Store(data_dir)
    publish(store, {"prices.parquet": prices, "sector_map.parquet": pl.DataFrame(
        {"symbol": ["AAA"], "sector": ["Energy"]})}, params={"universe": ["AAA", "BBB"]})
    store.file_path("sector_map.parquet").unlink()
    (store.archive / store.current_version() / "stray.txt").write_text("x")
    report = validate_store(store, config_for(data_dir), today=TODAY)
    found = {(f.check, f.message.split(":")[0]) for f in report.findings}
    assert found == {("missing_file", "sector_map.parquet"), ("unlisted_file", "stray.txt")}


def test_universe_falls_back_to_config_then_default(data_dir, prices, tmp_path):
    store = Store(data_dir)
    publish(store, {"prices.parquet": prices})
    report = validate_store(store, config_for(data_dir), today=TODAY)
    assert report.stats["universe_source"] == "aurora default universe"
    assert {f.check for f in report.findings} == {"missing_symbols", "unexpected_symbols"}
    universe = tmp_path / "lists" / "u.txt"  # any readable file, inside the data dir or not
    universe.parent.mkdir(parents=True, exist_ok=True)
    universe.write_text("AAA\nBBB\nCCC\n")
    cfg = AuroraConfig(data_dir=data_dir, universe=universe)
    report = validate_store(store, cfg, today=TODAY)
    assert [(f.check, f.symbol) for f in report.findings] == [("missing_symbols", "CCC")]


def test_universe_recorded_in_the_version_unless_configured(data_dir, prices, tmp_path):
    store = Store(data_dir)
    with store.transaction("fetch", base=None,
                           universe=UniverseRecord(symbols=("AAA",), source="my list")) as txn:
        atomic_write_parquet(txn.path("prices.parquet"), prices)
    report = validate_store(store, config_for(data_dir), today=TODAY)
    assert [(f.check, f.symbol) for f in report.findings] == [("unexpected_symbols", "BBB")]
    assert report.stats["universe_source"] == "my list"
    configured = tmp_path / "both.txt"
    configured.write_text("AAA\nBBB\n")
    report = validate_store(store, AuroraConfig(data_dir=data_dir, universe=configured),
                            today=TODAY)
    assert report.findings == [] and report.stats["universe_source"] == str(configured)


def test_other_known_files(data_dir, prices):
    store = Store(data_dir)
    features = pl.DataFrame({
        "date": [dt.date(2024, 1, 2)] * 2, "symbol": ["AAA", "AAA"],
        "f_mom": [0.1, 0.2], "f_count": [1, 2]})
    publish(store, {"prices.parquet": prices, "features.parquet": features,
                    "predictions.json": "{not json", "fundamentals.parquet":
                    pl.DataFrame({"symbol": ["AAA"], "as_of": ["2024-01-02"]})},
            params={"universe": ["AAA", "BBB"]})
    report = validate_store(store, config_for(data_dir), today=TODAY)
    got = sorted((f.check, f.message.split(":")[0]) for f in report.findings)
    assert got == [("duplicate_keys", "features.parquet"), ("file_schema", "features.parquet"),
                   ("file_schema", "fundamentals.parquet"), ("unreadable", "predictions.json")]
    [schema] = [f for f in report.findings if f.message.startswith("features.parquet: column")]
    assert "f_count" in schema.message


def test_every_part_of_the_features_dataset_is_checked(data_dir, prices):
    """A partitioned version: each part against its sha256 and its schema, (symbol, date)
    unique across parts, and a file planted beside the parts reported."""
    store = Store(data_dir)
    good = pl.DataFrame({"date": [dt.date(2023, 12, 29), dt.date(2024, 1, 2)],
                         "symbol": ["AAA", "AAA"], "f_mom": [0.1, 0.2]})
    publish(store, {"prices.parquet": prices}, params={"universe": ["AAA", "BBB"]})
    fetched = store.manifest()
    with store.transaction("build", base=fetched.version) as txn:
        atomic_write_text(txn.path("features.meta.json"), "{}")
        txn.describe("features.meta.json",
                     prices_sha256=fetched.files["prices.parquet"].sha256)
        write_dataset(txn, "features", good)
        # the same key in a second part of another year cannot happen by partitioning:
        # plant a duplicate row in the 2024 part by hand, under a valid manifest
        atomic_write_parquet(txn.path("features/year=2024/part-0.parquet"),
                             pl.concat([good.tail(1), good.tail(1)]))
    [dup] = validate_store(store, config_for(data_dir), today=TODAY).findings
    assert dup.message.startswith("features: ") and dup.check == "duplicate_keys"
    version = store.current_version()
    part = store.archive / version / "features/year=2023/part-0.parquet"
    part.chmod(0o600)
    part.write_bytes(b"garbage")
    (store.archive / version / "features/year=2099").mkdir()
    (store.archive / version / "features/year=2099/part-0.parquet").write_bytes(b"x")
    report = validate_store(store, config_for(data_dir), today=TODAY)
    got = sorted((f.check, f.message.split(":")[0]) for f in report.findings)
    assert got == [("checksum", "features/year=2023/part-0.parquet"),
                   ("duplicate_keys", "features"),
                   ("unlisted_file", "features/year=2099/part-0.parquet"),
                   ("unreadable", "features/year=2023/part-0.parquet")]


def test_rows_in_the_part_of_another_year_are_reported(data_dir, prices):
    store = Store(data_dir)
    publish(store, {"prices.parquet": prices}, params={"universe": ["AAA", "BBB"]})
    fetched = store.manifest()
    rows = pl.DataFrame({"date": [dt.date(2024, 1, 2), dt.date(2025, 1, 2)],
                         "symbol": ["AAA", "AAA"], "f_mom": [0.1, 0.2]})
    with store.transaction("build", base=fetched.version) as txn:
        atomic_write_text(txn.path("features.meta.json"), "{}")
        txn.describe("features.meta.json",
                     prices_sha256=fetched.files["prices.parquet"].sha256)
        atomic_write_parquet(txn.path("features/year=2024/part-0.parquet"), rows)
    [misplaced] = validate_store(store, config_for(data_dir), today=TODAY).findings
    assert misplaced.check == "misplaced_rows" and misplaced.message.startswith(
        "features/year=2024/part-0.parquet: 1 row(s) dated outside 2024 (first 2025-01-02)")
    assert main(["validate", "--data-dir", str(data_dir)]) == 5


def test_unreadable_prices(data_dir):
    store = Store(data_dir)
    publish(store, {"prices.parquet": b"PAR1 definitely not parquet"})
    report = validate_store(store, config_for(data_dir), today=TODAY)
    [f] = report.findings
    assert f.check == "unreadable" and f.message.startswith("prices.parquet: cannot be read")


def test_corporate_actions_from_the_store_explain_moves(data_dir, bars, zigzag):
    closes = zigzag(20)
    closes[9:] = [c / 2 for c in closes[9:]]
    prices = bars("AAA", closes)
    actions = pl.DataFrame({
        "id": ["1"], "action_type": ["forward_split"], "symbol": ["AAA"],
        "old_symbol": [None], "ex_date": [prices["date"][9]], "process_date": [None],
        "old_rate": [1.0], "new_rate": [2.0], "cash_rate": [None]},
        schema_overrides={"old_symbol": pl.String, "process_date": pl.Date,
                          "cash_rate": pl.Float64})
    store = Store(data_dir)
    publish(store, {"prices.parquet": prices}, params={"universe": ["AAA"]})
    assert [f.check for f in validate_store(store, config_for(data_dir), TODAY).findings] == [
        "large_move"]
    with store.transaction("import", base=store.current_version()) as txn:
        atomic_write_parquet(txn.path("corporate_actions.parquet"), actions)
    report = validate_store(store, config_for(data_dir), TODAY)
    assert [f.check for f in report.findings] == ["explained_move"] and report.ok


def test_empty_store_raises(data_dir):
    with pytest.raises(StoreError, match="empty"):
        validate_store(Store(data_dir), config_for(data_dir), TODAY)


# -- CLI ----------------------------------------------------------------------------------
def test_cli_ok_writes_default_report(data_dir, prices, capsys):
    store = Store(data_dir)
    publish(store, {"prices.parquet": prices}, params={"universe": ["AAA", "BBB"]})
    assert main(["validate", "--data-dir", str(data_dir)]) == 0
    report = json.loads((data_dir / "state" / "validation-report.json").read_text())
    assert report["ok"] is True and report["errors"] == 0
    assert "OK: 0 error(s)" in capsys.readouterr().out


def test_cli_corruption_exits_5_and_names_the_file(data_dir, prices, tmp_path, capsys):
    store = Store(data_dir)
    publish(store, {"prices.parquet": prices}, params={"universe": ["AAA", "BBB"]})
    corrupt(store, "prices.parquet")
    out_file = tmp_path / "r" / "report.json"
    code = main(["validate", "--data-dir", str(data_dir), "--report", str(out_file)])
    assert code == 5
    captured = capsys.readouterr()
    assert "prices.parquet: checksum mismatch" in captured.out
    assert captured.err.startswith("error: validation failed with 1 error(s)")
    assert "Traceback" not in captured.err
    report = json.loads(out_file.read_text())
    assert report["ok"] is False
    assert report["checks"]["checksum"]["findings"] == 1


def test_cli_severity_from_config_file(data_dir, bars, zigzag, tmp_path):
    closes = zigzag(20)
    closes[9:] = [c / 2 for c in closes[9:]]
    store = Store(data_dir)
    publish(store, {"prices.parquet": bars("AAA", closes)}, params={"universe": ["AAA"]})
    assert main(["validate", "--data-dir", str(data_dir)]) == 5
    toml = tmp_path / "aurora.toml"
    toml.write_text('[validation.severities]\nlarge_move = "warning"\n')
    assert main(["validate", "--data-dir", str(data_dir), "--config", str(toml)]) == 0


def test_cli_empty_store_exit_code(data_dir, capsys):
    assert main(["validate", "--data-dir", str(data_dir)]) == 7
    assert "empty" in capsys.readouterr().err


def test_predictions_from_other_prices_are_stale(data_dir, prices, monkeypatch):
    import aurora.validation.store_check as store_check

    monkeypatch.setattr(store_check, "validate_document", lambda doc, source="": None)
    store = Store(data_dir)
    publish(store, {"prices.parquet": prices})
    sha = store.manifest().files["prices.parquet"].sha256
    doc = {"decision_date": "2024-02-01", "inputs": {"prices_sha256": sha}}
    publish(store, {"predictions.json": json.dumps(doc)})
    assert "stale_predictions" not in {f.check for f in
                                       validate_store(store, config_for(data_dir)).findings}
    doc["inputs"]["prices_sha256"] = "0" * 64  # made from yesterday's prices
    publish(store, {"predictions.json": json.dumps(doc)})
    [f] = [f for f in validate_store(store, config_for(data_dir)).findings
           if f.check == "stale_predictions"]
    assert f.severity == "warning" and "other prices than" in f.message


def test_predictions_breaking_the_schema_are_an_error(data_dir, prices):
    store = Store(data_dir)
    publish(store, {"prices.parquet": prices, "predictions.json": '{"decision_date": 5}'})
    report = validate_store(store, config_for(data_dir))
    assert any(f.check == "file_schema" and "predictions.json" in f.message
               for f in report.errors)
