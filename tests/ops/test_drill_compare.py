"""The drill's comparison of rebuilt features with the backed-up ones."""

import datetime as dt

import polars as pl

from aurora.ops.recovery import compare_features


def _frame(values, symbols=("AAA", "BBB")) -> pl.DataFrame:
    return pl.DataFrame({"date": [dt.date(2024, 1, 2)] * len(symbols), "symbol": list(symbols),
                         "f_x": values}, schema_overrides={"f_x": pl.Float64})


def test_identical_close_and_different():
    base = _frame([1.0, -2.0])
    assert compare_features(base, _frame([1.0, -2.0])) == "identical"
    assert compare_features(base, _frame([1.0 + 1e-13, -2.0])) == "within 1e-9"
    assert compare_features(base, _frame([1.0 + 1e-6, -2.0])) == "different"
    assert compare_features(base, _frame([None, -2.0])) == "different"
    assert compare_features(base, _frame([1.0, -2.0], ("AAA", "CCC"))) == "different"
    # near zero after a cancellation: judged against the feature's spread
    assert compare_features(_frame([1e-12, 3.0]), _frame([2e-12, 3.0])) == "within 1e-9"
