"""build_features over a real Store and `aurora build` end to end."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from aurora.atomic import atomic_write_parquet
from aurora.cli.main import main
from aurora.config import AuroraConfig
from aurora.errors import DataValidationError, StoreError
from aurora.features import builder
from aurora.features.builder import build_features
from aurora.features.gates import gate_symbols
from aurora.features.registry import FEATURE_NAMES, MAX_LOOKBACK, REGISTRY_VERSION
from aurora.store import Store, UniverseRecord
from aurora.store.datasets import dataset_parts, read_features

from .conftest import SECTORS, random_fundamentals


def _seed(store: Store, prices: pl.DataFrame, fundamentals=None, adjustment="raw"):
    universe = UniverseRecord(symbols=tuple(prices["symbol"].unique().sort()), source="test")
    with store.transaction("fetch", base=store.current_version(), universe=universe,
                           params={"adjustment": adjustment}) as txn:
        atomic_write_parquet(txn.path("prices.parquet"), prices)
        txn.describe("prices.parquet", rows=prices.height, adjustment=adjustment)
        sm = pl.DataFrame({"symbol": list(SECTORS), "sector": list(SECTORS.values())})
        atomic_write_parquet(txn.path("sector_map.parquet"), sm)
        if fundamentals is not None:
            atomic_write_parquet(txn.path("fundamentals.parquet"), fundamentals)


def test_build_publishes_features_and_meta(data_dir, panel):
    store = Store(data_dir)
    _seed(store, panel, random_fundamentals(panel))
    before = store.current_version()
    result = build_features(store, AuroraConfig(data_dir=data_dir))
    assert result.gates.passed and store.current_version() != before
    frame = read_features(store)
    assert frame.columns == ["date", "symbol", *FEATURE_NAMES]
    assert all(frame.schema[n] == pl.Float64 for n in FEATURE_NAMES)
    meta = json.loads(store.file_path("features.meta.json").read_text())
    assert meta["feature_count"] == 45 and meta["symbol_count"] == len(SECTORS)
    assert meta["feature_types"] == {"price": 15, "volume": 10, "cross_sectional": 12,
                                     "residual": 8}
    assert meta["registry_version"] == REGISTRY_VERSION
    assert set(meta["inputs"]) == {"prices.parquet", "sector_map.parquet",
                                   "fundamentals.parquet"}
    assert meta["date_range"] == [str(frame["date"].min()), str(frame["date"].max())]
    assert any(k.startswith("lookahead") for k in meta["gates"])
    manifest = store.manifest()
    assert manifest.files["features.meta.json"].meta("rows") == frame.height
    # the prices the features were built from (what predict and validate check)
    assert manifest.files["features.meta.json"].meta("prices_sha256") == \
        manifest.files["prices.parquet"].sha256
    # one part per year, each holding its year's rows
    parts = dataset_parts(manifest, "features")
    years = sorted(frame["date"].dt.year().unique().to_list())
    assert list(parts) == years and "features.parquet" not in manifest.files
    assert sum(manifest.files[name].meta("rows") for name in parts.values()) == frame.height
    assert (store.state_dir / "build-report.json").exists()


def test_failing_gate_leaves_latest_untouched(data_dir, panel, capsys):
    store = Store(data_dir)
    _seed(store, panel)
    before = store.current_version()
    config = AuroraConfig(data_dir=data_dir)
    with pytest.raises(DataValidationError, match=r"symbol_coverage.*ZZZ \(no bars\)"):
        build_features(store, config, universe=[*SECTORS, "ZZZ"])
    assert store.current_version() == before
    report = json.loads((store.state_dir / "build-report.json").read_text())
    assert report["passed"] is False
    code = main(["build", "--data-dir", str(data_dir), "--config", str(_toml(data_dir))])
    assert code == 5 and "symbol_coverage" in capsys.readouterr().err
    assert store.current_version() == before


def _toml(data_dir):
    universe = data_dir / "universe" / "u.txt"
    universe.parent.mkdir(parents=True, exist_ok=True)
    universe.write_text("\n".join([*SECTORS, "ZZZ"]) + "\n")
    path = data_dir.parent / "aurora.toml"
    path.write_text(f'universe = "{universe}"\n')
    return path


def test_cli_build_prints_summary(data_dir, panel, capsys):
    _seed(Store(data_dir), panel)
    assert main(["build", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "built 45 features" in out and "gates:" in out


def test_raw_prices_are_adjusted_with_corporate_actions(data_dir, panel):
    aaa = panel.filter(pl.col("symbol") == "AAA")
    ex = aaa["date"][300]
    raw = panel.with_columns(
        pl.when((pl.col("symbol") == "AAA") & (pl.col("date") >= ex))
        .then(pl.col(c) / 2).otherwise(pl.col(c)).alias(c) for c in ("open", "high", "low",
                                                                      "close"))
    store = Store(data_dir)
    _seed(store, raw, adjustment="raw")
    actions = pl.DataFrame({"id": ["x"], "action_type": ["forward_split"], "symbol": ["AAA"],
                            "old_symbol": [None], "ex_date": [ex], "process_date": [ex],
                            "old_rate": [1.0], "new_rate": [2.0], "cash_rate": [None]},
                           schema_overrides={"old_symbol": pl.String, "cash_rate": pl.Float64})
    with store.transaction("actions", base=store.current_version()) as txn:
        atomic_write_parquet(txn.path("corporate_actions.parquet"), actions)
    build_features(store, AuroraConfig(data_dir=data_dir), lookahead=False)
    frame = read_features(store)
    split_day = frame.filter((pl.col("symbol") == "AAA") & (pl.col("date") == ex))
    assert split_day["f_ret_1d"].abs().item() < 0.2


def test_a_new_listing_is_not_ranked_yet_and_a_symbol_without_bars_fails():
    frame = pl.DataFrame({"date": [dt.date(2024, 1, 2)], "symbol": ["AAA"]})
    spans = pl.DataFrame({"symbol": ["NEW"], "first_date": [dt.date(2024, 1, 2)],
                          "last_date": [dt.date(2024, 1, 31)]})
    result = gate_symbols(frame, ["AAA", "NEW", "GONE"], spans)
    assert not result.passed
    assert result.message == "1 universe symbol(s) have no feature rows: GONE (no bars)"
    assert result.details["missing"] == ["GONE"]
    new = result.details["not_ranked"]["NEW"]
    assert new == (f"NEW (21 sessions of history from 2024-01-02, the warm-up needs "
                   f"{MAX_LOOKBACK + 1})")
    # the new listing alone passes, named; a quarantined symbol without bars too
    alone = gate_symbols(frame, ["AAA", "NEW", "HELD"], spans,
                         excused={"HELD": "quarantined: duplicates on 2024-01-05"})
    assert alone.passed and alone.details["missing"] == []
    assert alone.message.startswith("1 of 3 universe symbols present; not ranked yet: HELD")
    assert "NEW (21 sessions" in alone.message
    assert "HELD (quarantined: duplicates on 2024-01-05)" in alone.message


def test_build_publishes_nothing_over_a_version_published_meanwhile(data_dir, panel,
                                                                     monkeypatch):
    store = Store(data_dir)
    _seed(store, panel)
    real = builder.compute_panel

    def racing(*args, **kwargs):  # another process publishes while the build computes
        with store.transaction("import", base=store.current_version()) as txn:
            atomic_write_parquet(txn.path("note.parquet"), pl.DataFrame({"x": [1]}))
        return real(*args, **kwargs)

    monkeypatch.setattr(builder, "compute_panel", racing)
    with pytest.raises(StoreError, match=r"another run published version .* while this build"):
        build_features(store, AuroraConfig(data_dir=data_dir), lookahead=False)
    assert dataset_parts(store.manifest(), "features") == {}
