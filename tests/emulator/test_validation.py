"""Parameter validation (400s) and the accepted time and timeframe spellings."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aurora_testbed.emulator.params import ParamError, parse_adjustment, parse_time, parse_timeframe

BASE = {"symbols": "AAPL", "timeframe": "1Day", "start": "2023-01-01", "end": "2023-02-01"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"timeframe": "1Fortnight"}, "invalid timeframe"),
        ({"timeframe": "60Min"}, "invalid timeframe"),
        ({"timeframe": "24H"}, "invalid timeframe"),
        ({"timeframe": "2Day"}, "invalid timeframe"),
        ({"timeframe": "5Month"}, "invalid timeframe"),
        ({"timeframe": "0Min"}, "invalid timeframe"),
        ({"timeframe": "61Min"}, "invalid timeframe"),
        ({"timeframe": ""}, "missing timeframe"),
        ({"start": "yesterday"}, "invalid start"),
        ({"start": "2023-02-30"}, "invalid start"),
        ({"end": "2023-01-01T25:00:00Z"}, "invalid end"),
        ({"end": "2023-01-01T10:00:00"}, "invalid end"),  # no zone
        ({"end": "2023-01-01T10:00:00.1234567891Z"}, "invalid end"),  # > ns precision
        ({"start": "2023-03-01", "end": "2023-02-01"}, "end should not be before start"),
        ({"limit": "0"}, "invalid limit"),
        ({"limit": "10001"}, "invalid limit"),
        ({"limit": "ten"}, "invalid limit"),
        ({"feed": "nasdaq"}, "invalid feed"),
        ({"feed": "SIP"}, "invalid feed"),
        ({"adjustment": "splits"}, "invalid adjustment"),
        ({"adjustment": "raw,split"}, "invalid adjustment"),
        ({"sort": "descending"}, "invalid sort"),
        ({"asof": "2023/01/01"}, "invalid asof"),
        ({"currency": "XXX"}, "invalid currency"),
        ({"currency": "EUR"}, "not supported by this emulator"),
        ({"symbols": ""}, "missing symbols"),
        ({"symbols": "AAPL,bad symbol"}, "invalid symbol"),
    ],
)
def test_each_validation_rule_is_a_400_with_a_json_message(client, change, message):
    resp = client.get("/v2/stocks/bars", params=BASE | change)
    assert resp.status_code == 400
    assert resp.headers["content-type"].startswith("application/json")
    assert message in resp.json()["message"]
    assert resp.headers["X-RateLimit-Limit"] == "200"


@pytest.mark.parametrize("spelling", ["1Day", "1D"])
def test_both_daily_spellings(client, spelling):
    body = client.get("/v2/stocks/bars", params=BASE | {"timeframe": spelling}).json()
    assert len(body["bars"]["AAPL"]) == 21


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2023-01-03T05:00:00Z", "2023-01-05T05:00:00Z"),
        ("2023-01-03T00:00:00-05:00", "2023-01-05T00:00:00-05:00"),
        ("2023-01-03T05:00:00.000000000Z", "2023-01-05T05:00:00.000000001Z"),
        ("2023-01-03T10:00:00+05:00", "2023-01-05T05:00:00.5Z"),
        ("2023-01-03", "2023-01-05"),  # bare dates: midnight New York, both inclusive
    ],
)
def test_time_formats_are_inclusive_on_t(client, start, end):
    body = client.get("/v2/stocks/bars", params=BASE | {"start": start, "end": end}).json()
    assert [b["t"] for b in body["bars"]["AAPL"]] == [
        "2023-01-03T05:00:00Z", "2023-01-04T05:00:00Z", "2023-01-05T05:00:00Z"]


def test_end_at_utc_midnight_excludes_that_days_bar(client):
    body = client.get("/v2/stocks/bars", params=BASE | {
        "start": "2023-01-03T00:00:00Z", "end": "2023-01-05T00:00:00Z"}).json()
    assert [b["t"] for b in body["bars"]["AAPL"]] == ["2023-01-03T05:00:00Z",
                                                     "2023-01-04T05:00:00Z"]
    almost = client.get("/v2/stocks/bars", params=BASE | {
        "start": "2023-01-03T05:00:00.000000001Z", "end": "2023-01-04T05:00:00Z"}).json()
    assert [b["t"] for b in almost["bars"]["AAPL"]] == ["2023-01-04T05:00:00Z"]


def test_daily_bars_are_stamped_at_new_york_midnight_across_dst(client):
    body = client.get("/v2/stocks/bars", params=BASE | {
        "start": "2022-03-10", "end": "2022-03-15"}).json()
    assert [b["t"] for b in body["bars"]["AAPL"]] == [
        "2022-03-10T05:00:00Z", "2022-03-11T05:00:00Z",  # EST
        "2022-03-14T04:00:00Z", "2022-03-15T04:00:00Z",  # EDT from 2022-03-13
    ]
    july = client.get("/v2/stocks/bars", params=BASE | {
        "start": "2022-07-01", "end": "2022-07-06"}).json()
    assert [b["t"] for b in july["bars"]["AAPL"]] == [
        "2022-07-01T04:00:00Z", "2022-07-05T04:00:00Z", "2022-07-06T04:00:00Z"]


def test_weekly_and_monthly_bars_aggregate_the_daily_bars(client, market):
    weekly = client.get("/v2/stocks/bars", params=BASE | {
        "timeframe": "1Week", "start": "2023-01-01", "end": "2023-01-31"}).json()["bars"]["AAPL"]
    daily = market.bars.filter(pl.col("symbol") == "AAPL",
                               pl.col("date").is_between(dt.date(2023, 1, 3), dt.date(2023, 1, 6)))
    first = weekly[0]
    assert first["t"] == "2023-01-03T05:00:00Z"  # Monday 2023-01-02 was a holiday
    assert first["o"] == daily["open"][0] and first["c"] == daily["close"][-1]
    assert first["h"] == daily["high"].max() and first["l"] == daily["low"].min()
    assert first["v"] == int(daily["volume"].sum()) and first["n"] == daily["trade_count"].sum()
    assert [b["t"][:10] for b in weekly] == ["2023-01-03", "2023-01-09", "2023-01-17",
                                              "2023-01-23", "2023-01-30"]
    quarterly = client.get("/v2/stocks/bars", params=BASE | {
        "timeframe": "3M", "start": "2022-01-01", "end": "2022-12-31"}).json()["bars"]["AAPL"]
    assert [b["t"] for b in quarterly] == ["2022-01-03T05:00:00Z", "2022-04-01T04:00:00Z",
                                           "2022-07-01T04:00:00Z", "2022-10-03T04:00:00Z"]


def test_adjustment_combinations_map_to_modes():
    assert parse_adjustment(None) == "raw"
    assert parse_adjustment("split,dividend") == "all"
    assert parse_adjustment("split,spin-off") == "split"
    assert parse_adjustment("dividend") == "dividend"
    assert parse_adjustment("spin-off") == "raw"
    with pytest.raises(ParamError):
        parse_adjustment("split,,dividend")


@given(st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2099, 12, 31),
                    timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=-5)),
                                               dt.timezone(dt.timedelta(hours=9, minutes=30))])),
       st.integers(0, 999))
def test_rfc3339_round_trip_to_nanoseconds(stamp, extra_ns):
    """isoformat() (what alpaca-py sends) parses to the exact instant, ns fractions included."""
    text = stamp.isoformat()
    micros = int(stamp.timestamp()) * 1_000_000 + stamp.microsecond
    assert parse_time("start", text) == micros * 1000
    base = stamp.replace(microsecond=0, tzinfo=None).isoformat()
    zone = stamp.strftime("%z")
    zone = zone[:3] + ":" + zone[3:]
    frac = f"{stamp.microsecond:06d}{extra_ns:03d}"
    assert parse_time("start", f"{base}.{frac}{zone}") == micros * 1000 + extra_ns


def test_timeframe_grammar():
    assert parse_timeframe("1Month").label == "1Month"
    assert parse_timeframe("12M").label == "12Month"
    assert parse_timeframe("1W").label == "1Week"
    for bad in ("Day", "1day", "1 Day", "-1Day", "13Month"):
        with pytest.raises(ParamError):
            parse_timeframe(bad)
