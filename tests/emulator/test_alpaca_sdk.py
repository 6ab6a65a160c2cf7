"""Conformance: the official alpaca-py SDK, pointed at the emulator with url_override."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pydantic
import pytest
from alpaca.common.exceptions import APIError
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.historical.corporate_actions import CorporateActionsClient
from alpaca.data.requests import CorporateActionsRequest, StockBarsRequest, StockLatestBarRequest
from alpaca.data.timeframe import TimeFrame

from aurora.calendar import sessions
from aurora_testbed.emulator import MarketData

START, END = dt.date(2022, 1, 1), dt.date(2023, 12, 31)


@pytest.fixture(scope="module")
def wide_market(market_builder) -> MarketData:
    """30 symbols x 501 sessions = 15,030 bars: alpaca-py's 10,000-bar pages need two."""
    return market_builder(25)


@pytest.fixture()
def wide_server(make_server, wide_market):
    return make_server(wide_market)


@pytest.fixture()
def sdk(wide_server, auth):
    """Constructor arguments pointing an alpaca-py client at the emulator."""
    return {"api_key": auth["APCA-API-KEY-ID"], "secret_key": auth["APCA-API-SECRET-KEY"],
            "url_override": wide_server.url}


def _symbols(market: MarketData) -> list[str]:
    return [s for s in market.symbols if s not in ("FB", "META")]


def _request(symbols: list[str], **extra) -> StockBarsRequest:
    return StockBarsRequest(symbol_or_symbols=symbols, timeframe=TimeFrame.Day,
                            start=dt.datetime(2022, 1, 1, tzinfo=dt.UTC),
                            end=dt.datetime(2023, 12, 31, 23, 59, tzinfo=dt.UTC), **extra)


def _held(market: MarketData, symbols: list[str]) -> pl.DataFrame:
    return market.bars.filter(pl.col("symbol").is_in(symbols),
                              pl.col("date").is_between(START, END)).sort("symbol", "date")


def _stamp(day: dt.date) -> dt.datetime:
    from zoneinfo import ZoneInfo

    return dt.datetime(day.year, day.month, day.day,
                       tzinfo=ZoneInfo("America/New_York")).astimezone(dt.UTC)


def test_raw_data_path_gets_exactly_the_bars_held(wide_server, wide_market, sdk):
    symbols = _symbols(wide_market)
    assert len(symbols) == 30
    client = StockHistoricalDataClient(**sdk, raw_data=True)
    raw = client.get_stock_bars(_request(symbols))
    held = _held(wide_market, symbols)
    assert sorted(raw) == symbols
    assert sum(len(v) for v in raw.values()) == held.height == 30 * 501
    for sym in symbols:
        rows = held.filter(pl.col("symbol") == sym)
        got = raw[sym]
        assert [b["t"] for b in got] == [
            _stamp(d).strftime("%Y-%m-%dT%H:%M:%SZ") for d in rows["date"]]
        assert [(b["o"], b["h"], b["l"], b["c"], b["v"]) for b in got] == [
            (r["open"], r["high"], r["low"], r["close"], round(r["volume"]))
            for r in rows.iter_rows(named=True)]
    pages = [e for e in wide_server.request_log if e.path == "/v2/stocks/bars"]
    assert len(pages) == 2
    assert [e.params["limit"] for e in pages] == ["10000", "10000"]
    assert "page_token" not in pages[0].params and pages[1].params["page_token"]
    assert pages[0].params["start"] == "2022-01-01T00:00:00+00:00"  # what alpaca-py sends
    assert pages[0].headers["User-Agent"].startswith("APCA-PY/")


def test_model_path_gets_exactly_the_bars_held(wide_server, wide_market, sdk):
    symbols = _symbols(wide_market)
    client = StockHistoricalDataClient(**sdk)
    barset = client.get_stock_bars(_request(symbols))
    held = _held(wide_market, symbols)
    got = [(b.symbol, b.timestamp, b.open, b.high, b.low, b.close, b.volume, b.trade_count,
            b.vwap) for sym in symbols for b in barset.data[sym]]
    assert got == [(r["symbol"], _stamp(r["date"]), r["open"], r["high"], r["low"], r["close"],
                    float(round(r["volume"])), float(r["trade_count"]), r["vwap"])
                   for r in held.iter_rows(named=True)]


def test_user_limit_is_split_into_pages_counted_across_symbols(wide_server, wide_market, sdk):
    client = StockHistoricalDataClient(**sdk, raw_data=True)
    raw = client.get_stock_bars(_request(_symbols(wide_market), limit=12_345))
    assert sum(len(v) for v in raw.values()) == 12_345
    limits = [e.params["limit"] for e in wide_server.request_log]
    assert limits == ["10000", "2345"]


def test_sdk_retries_through_a_short_429_burst(wide_server, sdk):
    client = StockHistoricalDataClient(**sdk, raw_data=True)
    client._retry_wait = 0  # the SDK's fixed 3 s sleep is not configurable publicly
    wide_server.faults.rate_limit_burst(2)
    raw = client.get_stock_bars(_request(["AAPL"]))
    assert len(raw["AAPL"]) == 501
    assert [e.status for e in wide_server.request_log] == [429, 429, 200]
    wide_server.faults.error(500)
    with pytest.raises(APIError) as info:  # 500 is not in alpaca-py's retry set
        client.get_stock_bars(_request(["AAPL"]))
    assert info.value.status_code == 500


def test_sdk_model_path_requires_n_and_vw(wide_server, sdk):
    """The docs call n/vw optional; alpaca-py's Bar model does not (see docs/emulator.md)."""
    wide_server.faults.set_lenient_bars()
    raw_client = StockHistoricalDataClient(**sdk, raw_data=True)
    assert "n" not in raw_client.get_stock_bars(_request(["AAPL"]))["AAPL"][0]
    client = StockHistoricalDataClient(**sdk)
    with pytest.raises(pydantic.ValidationError):
        client.get_stock_bars(_request(["AAPL"]))


def test_latest_bar_through_the_sdk(wide_server, wide_market, sdk):
    client = StockHistoricalDataClient(**sdk)
    latest = client.get_stock_latest_bar(StockLatestBarRequest(symbol_or_symbols=["AAPL",
                                                                                  "MSFT"]))
    last = wide_market.bars.filter(pl.col("symbol") == "MSFT").tail(1).row(0, named=True)
    assert latest["MSFT"].close == last["close"]
    assert latest["MSFT"].timestamp == _stamp(last["date"])


def test_corporate_actions_client_raw_and_models(wide_server, sdk):
    request = CorporateActionsRequest(start=dt.date(2020, 1, 1), end=dt.date(2024, 1, 1))
    raw = CorporateActionsClient(**sdk, raw_data=True)
    data = raw.get_corporate_actions(request)
    assert {k: len(v) for k, v in data.items()} == {
        "cash_dividends": 2, "forward_splits": 1, "name_changes": 1, "reverse_splits": 1}
    models = CorporateActionsClient(**sdk)
    parsed = models.get_corporate_actions(request).data
    (rename,) = parsed["name_changes"]
    assert (rename.old_symbol, rename.new_symbol, rename.process_date) == (
        "FB", "META", dt.date(2022, 6, 9))
    (split,) = parsed["forward_splits"]
    assert (split.symbol, split.old_rate, split.new_rate) == ("AAPL", 1.0, 4.0)
    assert [d.rate for d in parsed["cash_dividends"]] == [1.0, 1.1]
    log = wide_server.request_log[-1]
    assert log.path == "/v1/corporate-actions"
    assert log.params == {"start": "2020-01-01", "end": "2024-01-01", "limit": "1000",
                          "sort": "asc"}


def test_session_count_matches_the_calendar():
    assert len(sessions(START, END)) == 501
