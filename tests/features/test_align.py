"""align_wide: bars placed on the session grid, and bad bars named."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from aurora.errors import DataValidationError
from aurora.features.wide import align_wide

from .conftest import SECTORS, random_panel


def test_unsorted_bars_give_the_same_panel():
    prices = random_panel(missing=0.05, seed=5)
    shuffled = prices.sample(fraction=1.0, shuffle=True, seed=1)
    a, _ = align_wide(prices, sectors=SECTORS)
    b, _ = align_wide(shuffled, sectors=SECTORS)
    assert a.symbols == b.symbols
    np.testing.assert_array_equal(a.start, b.start)
    for name, array in a.arrays.items():
        np.testing.assert_array_equal(array, b.arrays[name], err_msg=name)


def test_a_missing_bar_is_nan_and_keeps_its_column():
    prices = random_panel(seed=6)
    day = prices["date"][20]
    panel, info = align_wide(prices.filter(~((pl.col("symbol") == "CCC")
                                              & (pl.col("date") == day))), sectors=SECTORS)
    row, col = panel.symbols.index("CCC"), int(np.flatnonzero(panel.dates == np.datetime64(day))[0])
    assert np.isnan(panel["close"][row, col])
    assert info.missing_bars >= 1


def test_duplicate_bar_is_named():
    prices = random_panel(seed=7)
    dup = pl.concat([prices, prices.filter(pl.col("symbol") == "BBB").slice(30, 1)])
    with pytest.raises(DataValidationError, match=r"BBB"):
        align_wide(dup, sectors=SECTORS)


def test_bar_on_a_non_session_is_named():
    prices = random_panel(seed=8)
    saturday = dt.date(2020, 1, 4)
    bad = prices.with_columns(
        pl.when((pl.col("symbol") == "DDD") & (pl.col("date") == dt.date(2020, 1, 3)))
        .then(pl.lit(saturday)).otherwise(pl.col("date")).alias("date"))
    with pytest.raises(DataValidationError, match=r"DDD.*2020-01-04|2020-01-04.*DDD"):
        align_wide(bad, sectors=SECTORS)



def _bars(days: list[dt.date], symbol: str = "AAA") -> pl.DataFrame:
    return pl.DataFrame({"date": days, "symbol": [symbol] * len(days), "open": 10.0,
                         "high": 11.0, "low": 9.0, "close": 10.5, "volume": 1000.0})


@pytest.mark.parametrize(("days", "named"), [
    ([dt.date(2024, 1, 6), dt.date(2024, 1, 8), dt.date(2024, 1, 9)], "2024-01-06"),  # first
    ([dt.date(2024, 1, 8), dt.date(2024, 1, 9), dt.date(2024, 1, 14)], "2024-01-14"),  # last
    ([dt.date(2024, 1, 6)], "2024-01-06"),  # no session at all between first and last
    ([dt.date(2024, 1, 12), dt.date(2024, 1, 15)], "2024-01-15"),  # a holiday (MLK day)
])
def test_the_first_or_last_bar_off_the_session_grid_is_named(days, named):
    with pytest.raises(DataValidationError, match=f"AAA, date={named}"):
        align_wide(_bars(days), sectors=SECTORS)


def test_bars_in_many_chunks_give_the_same_panel():
    prices = random_panel(missing=0.05, seed=9)
    parts = [prices.slice(i, 37) for i in range(0, prices.height, 37)]
    chunked = pl.concat(parts, rechunk=False)
    assert chunked["close"].n_chunks() > 1
    a, _ = align_wide(prices.rechunk(), sectors=SECTORS)
    b, _ = align_wide(chunked, sectors=SECTORS)
    for name, array in a.arrays.items():
        np.testing.assert_array_equal(array, b.arrays[name], err_msg=name)
