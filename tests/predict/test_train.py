"""train_and_score: point-in-time cut, determinism, missing symbols, bad inputs."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from aurora import calendar
from aurora.errors import DataValidationError
from aurora.predict import train_and_score


@pytest.fixture(scope="module")
def setup(helpers):
    h = helpers
    prices = h.planted_prices(n_symbols=30, n_sessions=320, seed=5)
    return prices, h.simple_features(prices), h.small_config()


def _decision(prices: pl.DataFrame, back: int) -> dt.date:
    days = sorted(prices["date"].unique().to_list())
    return days[-back]


def test_scores_are_deterministic(setup):
    prices, features, config = setup
    day = _decision(prices, 30)
    a = train_and_score(features, prices, day, config)
    b = train_and_score(features, prices, day, config)
    assert a.scores.equals(b.scores)
    assert a.model == b.model
    other_seed = config.model_copy(update={"predict": config.predict.model_copy(
        update={"seed": 8})})
    c = train_and_score(features, prices, day, other_seed)
    assert not a.scores["score"].equals(c.scores["score"])  # the seed does matter


def test_later_data_does_not_change_the_scores(setup):
    prices, features, config = setup
    day = _decision(prices, 40)
    full = train_and_score(features, prices, day, config)
    cut = train_and_score(features.filter(pl.col("date") < day),
                          prices.filter(pl.col("date") < day), day, config)
    assert full.scores.equals(cut.scores)
    assert full.model == cut.model
    # Poisoning everything from the decision date on changes nothing either.
    poisoned_prices = prices.with_columns(
        pl.when(pl.col("date") >= day).then(pl.col("close") * 3).otherwise(pl.col("close"))
        .alias("close"))
    poisoned = features.with_columns(
        pl.when(pl.col("date") >= day).then(pl.col("f_ret_1") * -50).otherwise(pl.col("f_ret_1"))
        .alias("f_ret_1"))
    assert train_and_score(poisoned, poisoned_prices, day, config).scores.equals(full.scores)


def test_training_window_respects_the_purge(setup):
    prices, features, config = setup
    day = _decision(prices, 30)
    result = train_and_score(features, prices, day, config)
    window = result.model["training_window"]
    feature_date = calendar.previous_session(day)
    assert result.feature_date == feature_date
    last_label = dt.date.fromisoformat(window["last_label_date"])
    # labels known by the feature date's close, with horizon + embargo sessions to spare
    gap = config.predict.horizon + config.predict.embargo_sessions
    assert last_label <= calendar.sessions_back(feature_date, gap)
    assert window["sessions"] == config.predict.train_sessions
    assert result.model["training_rows"] == 30 * config.predict.train_sessions


def test_symbols_without_features_are_listed_with_a_reason(setup):
    prices, features, config = setup
    day = _decision(prices, 20)
    fdate = calendar.previous_session(day)
    features = features.filter(~((pl.col("symbol") == "S001") & (pl.col("date") == fdate)))
    features = features.with_columns(
        pl.when((pl.col("symbol") == "S002") & (pl.col("date") == fdate)).then(None)
        .otherwise(pl.col(c)).alias(c) for c in ("f_ret_1", "f_ret_5", "f_ret_20", "f_vol_20"))
    wanted = [*sorted(features["symbol"].unique().to_list()), "ZZZ"]
    result = train_and_score(features, prices, day, config, symbols=wanted)
    scores = result.scores
    assert scores.height == len(wanted)
    assert set(scores["symbol"]) == set(wanted)
    missing = {r["symbol"]: r["reason"] for r in scores.filter(pl.col("score").is_null())
               .iter_rows(named=True)}
    assert missing == {
        "S001": f"no features on feature date {fdate}",
        "S002": f"all features null on feature date {fdate}",
        "ZZZ": f"no features on feature date {fdate}",
    }
    ranked = scores.filter(pl.col("score").is_not_null())
    assert ranked["rank"].to_list() == list(range(1, len(wanted) - 2))
    assert ranked["score"].is_sorted(descending=True)
    assert ranked["percentile"][0] == 100.0 and ranked["percentile"][-1] == 0.0
    assert scores.filter(pl.col("score").is_null())["rank"].null_count() == 3


def test_bad_decision_dates(setup):
    prices, features, config = setup
    with pytest.raises(DataValidationError, match="2024-01-06 is not an NYSE session"):
        train_and_score(features, prices, dt.date(2024, 1, 6), config)
    late = calendar.next_session(calendar.next_session(prices["date"].max()))
    with pytest.raises(DataValidationError,
                       match=r"no rows for feature date .* run `aurora build`"):
        train_and_score(features, prices, late, config)
    early = _decision(prices, 300)
    with pytest.raises(DataValidationError, match="not enough labelled history"):
        train_and_score(features, prices, early, config)
