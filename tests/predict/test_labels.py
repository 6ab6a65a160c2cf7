"""Labels: the one-session shift on a hand-built price series."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from aurora import calendar
from aurora.errors import DataValidationError
from aurora.predict.labels import SessionClock, forward_returns

DAYS = calendar.sessions(dt.date(2024, 6, 27), dt.date(2024, 7, 12))  # July 4th is a holiday


def prices(symbol: str = "X", skip: tuple[dt.date, ...] = ()) -> pl.DataFrame:
    rows = [(d, symbol, 100.0 + i) for i, d in enumerate(DAYS) if d not in skip]
    return pl.DataFrame(rows, schema={"date": pl.Date, "symbol": pl.String, "close": pl.Float64},
                        orient="row")


def close_on(day: dt.date) -> float:
    return 100.0 + DAYS.index(day)


def test_label_starts_at_the_close_of_the_next_session():
    labels = forward_returns(prices(), horizon=2)
    row = labels.filter(pl.col("date") == dt.date(2024, 7, 2)).row(0, named=True)
    # Features of Tue 2 July -> trade on Wed 3 July; two sessions later is Mon 8 July
    # (Thu 4 July is a holiday).
    assert row["decision_date"] == dt.date(2024, 7, 3)
    assert row["label_end"] == dt.date(2024, 7, 8)
    expected = close_on(dt.date(2024, 7, 8)) / close_on(dt.date(2024, 7, 3)) - 1
    assert row["fwd_return"] == pytest.approx(expected)
    assert row["label_end_session"] - row["session"] == 3  # horizon + the one-session shift


def test_every_label_uses_the_shifted_window():
    labels = forward_returns(prices(), horizon=1).drop_nulls("fwd_return")
    for row in labels.iter_rows(named=True):
        i = DAYS.index(row["date"])
        assert row["fwd_return"] == pytest.approx((100.0 + i + 2) / (100.0 + i + 1) - 1)
    # The last two sessions have no label (their decision or end close is not stored yet).
    tail = forward_returns(prices(), horizon=1).filter(pl.col("fwd_return").is_null())
    assert tail["date"].to_list() == DAYS[-2:]


def test_missing_bar_gives_null_labels_not_stretched_ones():
    gap = dt.date(2024, 7, 5)
    labels = forward_returns(prices(skip=(gap,)), horizon=2)
    by_date = dict(labels.select("date", "fwd_return").iter_rows())
    # Rows whose decision close or end close is the missing 5 July get no label.
    assert by_date[dt.date(2024, 7, 1)] is None   # d = 2 July, end = 5 July
    assert by_date[dt.date(2024, 7, 3)] is None   # d = 5 July
    assert by_date[dt.date(2024, 7, 2)] == pytest.approx(
        close_on(dt.date(2024, 7, 8)) / close_on(dt.date(2024, 7, 3)) - 1)
    assert labels.height == len(DAYS) - 1


def test_symbols_do_not_mix():
    both = pl.concat([prices("A"), prices("B").with_columns(pl.col("close") * 2)])
    labels = forward_returns(both, horizon=1)
    a = labels.filter(pl.col("symbol") == "A")["fwd_return"]
    b = labels.filter(pl.col("symbol") == "B")["fwd_return"]
    assert a.to_list() == pytest.approx(b.to_list(), nan_ok=True)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.with_columns(pl.when(pl.col("date") == DAYS[3]).then(0.0)
                                  .otherwise(pl.col("close")).alias("close")),
         "X on 2024-07-02: close 0.0 is not a positive price"),
        (lambda p: pl.concat([p, p.head(1)]), "first X on 2024-06-27"),
        (lambda p: pl.concat([p, pl.DataFrame({"date": [dt.date(2024, 7, 4)], "symbol": ["X"],
                                               "close": [1.0]})]),
         "X has a row on 2024-07-04, which is not an NYSE session"),
    ],
)
def test_bad_prices_are_rejected_naming_the_row(mutate, message):
    with pytest.raises(DataValidationError, match=message):
        forward_returns(mutate(prices()), horizon=2)


def test_session_clock_pads_past_the_data():
    clock = SessionClock.covering(DAYS[0], DAYS[-1], pad_sessions=3)
    assert clock.days[: len(DAYS)] == tuple(DAYS)
    assert len(clock.days) == len(DAYS) + 3
    assert clock.index_of(DAYS[2]) == 2
    with pytest.raises(ValueError):
        clock.index_of(dt.date(2024, 7, 4))
