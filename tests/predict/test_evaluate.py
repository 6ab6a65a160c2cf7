"""Walk-forward evaluation: finds a planted signal, flags leakage, stays quiet on noise."""

from __future__ import annotations

import polars as pl
import pytest

from aurora.errors import DataValidationError
from aurora.predict import walk_forward
from aurora.predict.labels import forward_returns


@pytest.fixture(scope="module")
def planted_report(planted, helpers):
    prices, features = planted
    return walk_forward(features, prices, helpers.small_config())


def test_finds_the_planted_reversal(planted_report):
    summary = planted_report.summary
    assert summary["status"] == "ok" and summary["protocol"]["folds"] >= 5
    for name in ("lightgbm", "ridge"):
        model = summary["models"][name]
        assert model["rank_ic"]["t"] > 3, name
        assert model["spread"]["mean"] > 0, name
        returns = model["quantile_mean_returns"]
        assert returns[-1] > returns[0], name
        assert 0 < model["top_quantile_turnover"] <= 1
    assert not summary["probable_leakage"]


def test_daily_series_and_oos_scores(planted_report, planted):
    daily = planted_report.daily
    assert set(daily["model"]) == {"lightgbm", "ridge"}
    assert daily["date"].is_sorted() or daily.filter(pl.col("model") == "ridge")["date"].is_sorted()
    oos = planted_report.oos
    prices, _ = planted
    first_test = oos["date"].min()
    # Nothing is scored before the first test block, every test row has a label.
    assert oos["label"].null_count() == 0
    assert first_test > prices["date"].min()
    doc = planted_report.to_json()
    assert len(doc["daily"]) == daily.height and isinstance(doc["daily"][0]["date"], str)


def test_label_copied_into_features_is_flagged_as_leakage(planted, helpers):
    prices, features = planted
    config = helpers.small_config()
    labels = forward_returns(prices, config.predict.horizon).select(
        "date", "symbol", f_leak="fwd_return")
    leaky = features.join(labels, on=["date", "symbol"], how="left")
    report = walk_forward(leaky, prices, config)
    assert report.summary["probable_leakage"]
    assert report.summary["models"]["lightgbm"]["rank_ic"]["mean"] > 0.5
    assert report.summary["models"]["lightgbm"]["probable_leakage"]
    assert any("PROBABLE LEAKAGE" in line for line in report.summary_lines())


def test_noise_is_not_mistaken_for_signal(helpers):
    prices = helpers.planted_prices(n_symbols=30, n_sessions=360, kappa=0.0, seed=99)
    report = walk_forward(helpers.simple_features(prices), prices, helpers.small_config())
    for model in report.summary["models"].values():
        assert abs(model["rank_ic"]["mean"]) < 0.05
        assert abs(model["rank_ic"]["t"]) < 3
    assert not report.summary["probable_leakage"]


def test_too_short_history_is_a_clear_error(helpers):
    prices = helpers.planted_prices(n_symbols=10, n_sessions=90)
    with pytest.raises(DataValidationError, match="history too short"):
        walk_forward(helpers.simple_features(prices), prices, helpers.small_config())


def test_the_skill_verdict_on_hand_made_summaries():
    from aurora.predict.evaluate import skill

    def summary(main_ic: float, t: float, base_ic: float = 0.0) -> dict:
        models = {"lightgbm": {"rank_ic": {"mean": main_ic, "t": t},
                               "probable_leakage": abs(main_ic) > 0.1},
                  "ridge": {"rank_ic": {"mean": base_ic, "t": 1.0},
                            "probable_leakage": abs(base_ic) > 0.1}}
        return {"status": "ok", "main_model": "lightgbm", "models": models,
                "leakage_threshold": 0.1,
                "probable_leakage": any(m["probable_leakage"] for m in models.values())}

    assert skill(summary(0.03, 2.5))["shows_skill"]
    assert skill(summary(0.03, 2.5))["verdict"].startswith("SKILL: out-of-sample rank IC +0.0300")
    weak = skill(summary(0.03, 1.9))
    assert not weak["shows_skill"] and weak["verdict"].startswith("NO EVIDENCE OF SKILL")
    assert not skill(summary(-0.05, -3.0))["shows_skill"]  # significant, but the wrong way
    leak = skill(summary(0.02, 5.0, base_ic=-0.15))  # the baseline trips the flag
    assert not leak["shows_skill"]
    assert leak["verdict"] == ("NOT TRUSTED: |mean rank IC| above the leakage threshold 0.1 "
                               "(ridge -0.1500); look for lookahead")
    short = skill({"status": "insufficient_history", "message": "too short"})
    assert not short["shows_skill"] and "no walk-forward result" in short["verdict"]
