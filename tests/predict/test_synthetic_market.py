"""On Aurora's synthetic market (planted 5-day reversal) the evaluation finds the signal,
and the tree model (LightGBM alone, horizon 5: the settings chosen on this market) at least
matches the ridge baseline on the build features. The defaults were chosen on real data
(factors, horizon 20, docs/predict.md) and hold no 5-day reversal."""

from __future__ import annotations

import datetime as dt

import pytest

from aurora.config import AuroraConfig, PredictConfig
from aurora.predict import walk_forward
from aurora.universe import default_universe

synthetic = pytest.importorskip("aurora_testbed.synthetic")
adjustments = pytest.importorskip("aurora.adjustments")
features_mod = pytest.importorskip("aurora.features")


@pytest.mark.slow
def test_walk_forward_finds_the_planted_reversal():
    universe = default_universe()
    market = synthetic.generate_market(universe.symbols, dt.date(2019, 1, 2),
                                       dt.date(2022, 12, 30), seed=7)
    prices = adjustments.adjust_bars(market.bars, market.corporate_actions, "all")
    features = features_mod.compute_features(prices, sectors=market.sectors,
                                             actions=market.corporate_actions)
    # The production protocol; the tree model at the planted signal's horizon.
    config = AuroraConfig(predict=PredictConfig(horizon=5, factor_weight=0.0))
    summary = walk_forward(features, prices, config).summary
    main, base = summary["models"]["lightgbm"], summary["models"]["ridge"]
    assert summary["protocol"]["folds"] >= 6
    assert main["rank_ic"]["t"] > 3 and base["rank_ic"]["t"] > 3
    assert main["spread"]["mean"] > 0
    assert not summary["probable_leakage"]
    # "At least matches the baseline": the mean daily rank IC is no more than 0.005 below
    # ridge's (measured: 0.0322 vs 0.0335) and the paired daily difference is not even
    # weakly negative (Newey-West t above -1; measured -0.2).
    assert main["rank_ic"]["mean"] >= base["rank_ic"]["mean"] - 0.005
    assert summary["main_minus_baseline_rank_ic"]["t"] > -1
