"""The build on the real S&P 500 sample (skipped when ../shared/data/sp500-sample is absent).

Import: the sample's close is split-adjusted and adj_close split+dividend-adjusted, so the
store's "all"-adjusted OHLC is OHLC x adj_close/close; volume is already split-adjusted and
dividends do not touch volume, so it is kept. market_cap is in billions of USD in two
snapshots but already in USD in the 2018-02-08 one (a real defect): a naive x1e9 import is
rejected by the build, naming that snapshot; a per-snapshot normalisation builds cleanly.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from aurora.atomic import atomic_write_parquet
from aurora.config import AuroraConfig
from aurora.errors import DataValidationError
from aurora.features.builder import build_features
from aurora.store import Store, UniverseRecord

SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "sp500-sample"
pytestmark = pytest.mark.skipif(not (SAMPLE / "prices.parquet").exists(),
                                reason="sp500 sample not available")


def _import(data_dir: Path, fundamentals: pl.DataFrame) -> Store:
    raw = pl.read_parquet(SAMPLE / "prices.parquet")
    prices = raw.select(  # the unadjusted bars; no corporate actions: returns exclude dividends
        "date", "symbol", "open", "high", "low", "close",
        pl.col("volume").cast(pl.Float64),
        pl.lit(None, dtype=pl.Float64).alias("vwap"),
        pl.lit(None, dtype=pl.Int64).alias("trade_count"),
    ).sort("symbol", "date")
    store = Store(data_dir)
    universe = UniverseRecord(symbols=tuple(prices["symbol"].unique().sort()), source="sample")
    with store.transaction("import", base=store.current_version(), universe=universe,
                           params={"adjustment": "raw"}) as txn:
        atomic_write_parquet(txn.path("prices.parquet"), prices)
        txn.describe("prices.parquet", adjustment="raw", rows=prices.height)
        atomic_write_parquet(txn.path("sector_map.parquet"),
                             pl.read_parquet(SAMPLE / "sector_map.parquet").select("symbol",
                                                                                  "sector"))
        atomic_write_parquet(txn.path("fundamentals.parquet"), fundamentals)
    return store


def _fundamentals() -> pl.DataFrame:
    return pl.read_parquet(SAMPLE / "fundamentals.parquet")


def test_naive_billions_import_is_rejected_naming_the_snapshot(data_dir):
    naive = _fundamentals().with_columns(pl.col("market_cap") * 1e9)
    store = _import(data_dir, naive)
    before = store.current_version()
    with pytest.raises(DataValidationError, match=r"implausible market_cap.*2018-02-08"):
        build_features(store, AuroraConfig(data_dir=data_dir), lookahead=False)
    assert store.current_version() == before
    report = json.loads((store.state_dir / "build-report.json").read_text())
    assert report["stage"] == "inputs" and "2018-02-08" in report["error"]


def test_sample_builds_and_passes_every_gate(data_dir):
    cap = pl.col("market_cap")
    fixed = _fundamentals().with_columns(
        pl.when(cap.median().over("as_of") < 1e6).then(cap * 1e9).otherwise(cap).alias(
            "market_cap"))
    store = _import(data_dir, fixed)
    result = build_features(store, AuroraConfig(data_dir=data_dir))
    assert result.gates.passed, result.gates.summary()
    meta = result.meta
    assert meta["symbol_count"] == 130 and meta["feature_count"] == 45
    assert meta["unknown_sector_symbols"] == ["CHK"]  # absent from the sector map
    assert meta["date_range"][1] == "2018-12-31"
    # before the first snapshot (2016-07-10) no shares are known: the documented fallback
    assert meta["turnover_fallback_rows"]
