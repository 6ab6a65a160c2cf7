"""Panel alignment, cross-sectional z-scores, and the purge of training windows."""

from __future__ import annotations

import datetime as dt
import itertools
import math

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aurora.errors import DataValidationError
from aurora.predict.dataset import (
    build_panel,
    feature_columns,
    last_trainable_session,
    training_rows,
    zscore_by_date,
)
from aurora.predict.evaluate import make_folds

D1, D2 = dt.date(2024, 1, 2), dt.date(2024, 1, 3)


def test_zscore_by_date_known_values():
    f = pl.DataFrame({
        "date": [D1, D1, D1, D2, D2, D2],
        "symbol": list("ABCABC"),
        "f_x": [1.0, 2.0, 3.0, 5.0, 5.0, None],
    })
    z = zscore_by_date(f, ["f_x"])["f_x"].to_list()
    assert z[:3] == pytest.approx([-math.sqrt(1.5), 0.0, math.sqrt(1.5)])
    assert z[3:5] == [0.0, 0.0] and z[5] is None  # no dispersion -> 0; null stays null


def test_zscore_clips_outliers():
    f = pl.DataFrame({"date": [D1] * 101, "symbol": [f"S{i}" for i in range(101)],
                      "f_x": [0.0] * 100 + [1e6]})
    assert zscore_by_date(f, ["f_x"], clip=5.0)["f_x"].max() == 5.0


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pl.DataFrame({"date": [D1], "symbol": ["A"], "x": [1.0]}), "no feature columns"),
        (pl.DataFrame({"date": [D1], "symbol": ["A"], "f_x": ["a"]}), "'f_x' is String"),
        (pl.DataFrame({"date": [D1, D1], "symbol": ["A", "A"], "f_x": [1.0, 2.0]}),
         "first A on 2024-01-02"),
        (pl.DataFrame({"symbol": ["A"], "f_x": [1.0]}), "missing column 'date'"),
    ],
)
def test_feature_columns_rejects_bad_panels(frame, message):
    with pytest.raises(DataValidationError, match=message):
        feature_columns(frame)


def test_panel_aligns_labels_with_the_feature_rows(planted):
    prices, features = planted
    panel = build_panel(features, prices, horizon=5)
    assert panel.frame.height == features.height
    assert panel.features == ["f_ret_1", "f_ret_5", "f_ret_20", "f_vol_20"]
    row = panel.frame.filter(pl.col("symbol") == "S003").row(30, named=True)
    close = dict(prices.filter(pl.col("symbol") == "S003").select("date", "close").iter_rows())
    expected = close[row["label_end"]] / close[row["decision_date"]] - 1
    assert row["fwd_return"] == pytest.approx(expected)
    # target is the per-date z-score of the label
    day = panel.frame.filter(pl.col("date") == row["date"])
    assert day["target"].mean() == pytest.approx(0.0, abs=1e-12)
    assert day["target"].std(ddof=0) == pytest.approx(1.0)



PANEL_CACHE: dict[str, object] = {}


def _panel(planted, horizon):
    key = f"h{horizon}"
    if key not in PANEL_CACHE:
        prices, features = planted
        PANEL_CACHE[key] = build_panel(features, prices, horizon)
    return PANEL_CACHE[key]


@settings(max_examples=40, deadline=None)
@given(horizon=st.sampled_from([1, 5, 10]), embargo=st.integers(0, 10),
       train_sessions=st.integers(20, 200), offset=st.integers(0, 150))
def test_training_labels_end_before_the_decision_with_a_purge(planted, horizon, embargo,
                                                              train_sessions, offset):
    panel = _panel(planted, horizon)
    cutoff = 200 + offset  # the session of the feature date the model decides from
    rows = training_rows(panel, cutoff, embargo=embargo, train_sessions=train_sessions)
    assert rows.height > 0
    # Every training label was known at the cutoff, with horizon + embargo sessions to spare:
    assert rows["label_end_session"].max() <= cutoff - horizon - embargo
    # ... so no training label interval [session + 1, label_end] reaches the decision
    # session (cutoff + 1) or any later test label.
    assert rows["label_end_session"].max() < cutoff + 1 - horizon
    assert rows["session"].max() == last_trainable_session(cutoff, horizon, embargo)
    assert rows["session"].n_unique() == min(train_sessions, rows["session"].max() + 1)
    assert rows["target"].null_count() == 0


def test_walk_forward_folds_are_purged(planted, helpers):
    config = helpers.small_config()
    panel = _panel(planted, config.predict.horizon)
    folds = make_folds(panel, config)
    assert len(folds) >= 5
    h, e = config.predict.horizon, config.predict.embargo_sessions
    for previous, fold in itertools.pairwise(folds):
        assert fold.test_start == previous.test_end + 1  # consecutive, non-overlapping blocks
    for fold in folds:
        rows = training_rows(panel, fold.test_start, embargo=e,
                             train_sessions=config.predict.train_sessions)
        assert rows["session"].n_unique() >= config.predict.min_train_sessions
        # The first test label starts at test_start + 1: the gap is at least purge + embargo.
        assert fold.test_start + 1 - rows["label_end_session"].max() >= h + e + 1
