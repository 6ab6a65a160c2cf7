"""End to end on the real S&P 500 sample (skipped when ../shared/data/sp500-sample is absent).

Real data has no planted signal: the test checks that the evaluation runs, produces finite
numbers and does not raise the leakage flag. The numbers themselves are in docs/predict.md.
"""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
import pytest

from aurora.config import AuroraConfig, PredictConfig
from aurora.predict import walk_forward

SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "sp500-sample"
if not SAMPLE.exists():
    SAMPLE = Path("/work/shared/data/sp500-sample")


def sample_prices() -> pl.DataFrame:
    """The sample in the prices schema: `close` is split-adjusted only, `adj_close` also
    dividend-adjusted (Aurora's "all"), so OHLC are scaled by adj_close / close."""
    raw = pl.read_parquet(SAMPLE / "prices.parquet")
    k = pl.col("adj_close") / pl.col("close")
    return raw.with_columns(
        open=pl.col("open") * k, high=pl.col("high") * k, low=pl.col("low") * k,
        close=pl.col("adj_close"), vwap=pl.lit(None, dtype=pl.Float64),
        trade_count=pl.lit(None, dtype=pl.Int64),
    ).drop("adj_close").sort("symbol", "date")


@pytest.mark.slow
@pytest.mark.skipif(not (SAMPLE / "prices.parquet").exists(), reason="sp500 sample absent")
def test_evaluation_runs_end_to_end_on_the_sample():
    features_mod = pytest.importorskip("aurora.features")
    prices = sample_prices()
    sectors = pl.read_parquet(SAMPLE / "sector_map.parquet").select("symbol", "sector")
    features = features_mod.compute_features(prices, sectors=sectors)
    config = AuroraConfig(predict=PredictConfig(test_sessions=252, n_estimators=60,
                                                train_sessions=500))
    summary = walk_forward(features, prices, config).summary
    assert summary["status"] == "ok" and summary["protocol"]["folds"] >= 2
    for model in summary["models"].values():
        assert math.isfinite(model["rank_ic"]["mean"]) and model["rank_ic"]["n"] > 300
        assert abs(model["rank_ic"]["mean"]) < 0.1
    assert not summary["probable_leakage"]
