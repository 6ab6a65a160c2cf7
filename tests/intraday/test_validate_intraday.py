"""Intraday validation on tiny hand-built bars with known answers."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from aurora.config import IntradayConfig
from aurora.errors import DataValidationError
from aurora.intraday import validate_intraday

DAY = dt.date(2024, 7, 2)  # 09:30 EDT is 13:30 UTC; the close 16:00 is 20:00 UTC
UTC = dt.UTC


def bar(minute: dt.datetime, o: float, h: float, low: float, c: float, v: float,
        symbol: str = "AAA") -> dict:
    return {"timestamp": minute, "date": DAY, "symbol": symbol, "open": o, "high": h,
            "low": low, "close": c, "volume": v, "vwap": None, "trade_count": 1}


def at(hour: int, minute: int) -> dt.datetime:
    return dt.datetime(2024, 7, 2, hour, minute, tzinfo=UTC)


def session(symbol: str = "AAA", every: int = 1) -> list[dict]:
    """A bar every `every` minutes of the regular session: open 10, close 11."""
    rows = []
    start = at(13, 30)
    for k in range(0, 390, every):
        price = 10 + k / 389
        rows.append(bar(start + dt.timedelta(minutes=k), price, price + 0.01, price - 0.01,
                        price, 100, symbol))
    rows[0]["open"], rows[-1]["close"] = 10.0, 11.0
    rows[-1]["high"] = 11.01
    return rows


def frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={
        "timestamp": pl.Datetime("us", "UTC"), "date": pl.Date, "symbol": pl.String,
        "open": pl.Float64, "high": pl.Float64, "low": pl.Float64, "close": pl.Float64,
        "volume": pl.Float64, "vwap": pl.Float64, "trade_count": pl.Int64})


def daily(symbol: str = "AAA", close: float = 11.0, volume: float = 39_000) -> pl.DataFrame:
    return pl.DataFrame({"date": [DAY], "symbol": [symbol], "open": [10.0],
                         "high": [11.01], "low": [9.99], "close": [close],
                         "volume": [volume]})


CFG = IntradayConfig()


def test_minutes_that_add_up_to_the_daily_bar_give_no_finding():
    found = validate_intraday(frame(session()), daily(), "1Min", CFG, "test")
    assert found.warnings() == [] and found.symbol_days == 1 and found.bars == 390


def test_a_close_off_by_two_percent_is_named_with_both_values():
    found = validate_intraday(frame(session()), daily(close=11.22), "1Min", CFG, "test")
    assert found.disagreements == ["AAA 2024-07-02 close 11 against the daily 11.22"]


def test_the_closing_auction_in_the_bar_at_the_close_agrees_with_the_daily_close():
    rows = [*session(), bar(at(20, 0), 11.22, 11.22, 11.22, 11.22, 500)]  # 16:00 print
    found = validate_intraday(frame(rows), daily(close=11.22, volume=39_500), "1Min", CFG,
                              "test")
    assert found.disagreements == [] and found.extended_bars == 1


def test_a_long_midday_gap_is_reported_a_short_one_is_not():
    rows = [r for r in session() if not at(16, 0) <= r["timestamp"] < at(16, 45)]
    found = validate_intraday(frame(rows), daily(volume=34_500), "1Min", CFG, "test")
    assert found.gaps == ["AAA 2024-07-02 (45 minutes)"]
    short = [r for r in session() if not at(16, 0) <= r["timestamp"] < at(16, 20)]
    assert validate_intraday(frame(short), daily(volume=37_000), "1Min", CFG,
                             "test").gaps == []


def test_five_minute_bars_are_checked_on_their_own_grid():
    found = validate_intraday(frame(session(every=5)), daily(volume=7_800), "5Min", CFG,
                              "test")
    assert found.gaps == [] and found.disagreements == []
    with pytest.raises(DataValidationError, match=r"AAA at 2024-07-02T13:31Z is not on the "
                                                  r"5Min grid"):
        validate_intraday(frame(session(every=1)), daily(), "5Min", CFG, "test")


def test_days_missing_on_either_side_are_named():
    found = validate_intraday(frame(session("AAA")), pl.concat([daily("AAA"), daily("BBB")]),
                              "1Min", CFG, "test")
    assert found.missing_days == ["BBB 2024-07-02"]
    found = validate_intraday(frame(session("AAA") + session("CCC")), daily("AAA"), "1Min",
                              CFG, "test")
    assert found.without_daily == ["CCC 2024-07-02"]


@pytest.mark.parametrize(("change", "message"), [
    ({"close": -1.0, "low": -1.0}, "has a non-positive price"),
    ({"high": 5.0}, "has a high below its open or close"),
    ({"volume": -3.0}, "has a negative volume"),
])
def test_an_impossible_bar_stops_the_fetch_naming_it(change, message):
    rows = session()
    rows[10].update(change)
    with pytest.raises(DataValidationError, match=rf"1Min bars of X: the 1Min bar of AAA at "
                                                  rf"2024-07-02T13:40Z {message}"):
        validate_intraday(frame(rows), daily(), "1Min", CFG, "1Min bars of X")


def test_a_repeated_bar_is_an_error():
    rows = session()
    with pytest.raises(DataValidationError, match="is repeated"):
        validate_intraday(frame(rows + rows[:1]), daily(), "1Min", CFG, "test")


def test_bad_bars_marks_every_bar_an_error_rule_names():
    from aurora.intraday.validate import bad_bars

    rows = session()
    rows[3]["volume"] = -1.0
    rows[7]["high"] = 1.0
    bars = frame([*rows, rows[0]])  # the first bar twice
    marked = bars.with_row_index().filter(bad_bars(bars, "1Min"))["index"].to_list()
    assert marked == [0, 3, 7, 390]
