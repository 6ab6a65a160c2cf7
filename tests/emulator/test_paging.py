"""Paging over /v2/stocks/bars: limits across symbols, order, tokens, the last page."""

from __future__ import annotations

import base64
import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest

from aurora.calendar import sessions

CORE = "AAPL,MSFT,JPM,XOM,JNJ"
RANGE = {"timeframe": "1Day", "start": "2022-01-01T00:00:00Z", "end": "2023-12-31T23:59:59Z"}


def _stamp(day: dt.date) -> str:
    """Midnight New York in UTC, computed independently of the emulator's code."""
    local = dt.datetime(day.year, day.month, day.day, tzinfo=ZoneInfo("America/New_York"))
    return local.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_raw_paging_returns_every_session_symbol_major(client, fetch_all):
    merged, pages = fetch_all(client, "/v2/stocks/bars", {"symbols": CORE, "limit": 1000, **RANGE})
    expected_days = sessions(dt.date(2022, 1, 1), dt.date(2023, 12, 31))
    assert len(expected_days) == 501
    assert len(pages) == 3  # 2505 bars at 1000 per page
    assert [sum(len(v) for v in p["bars"].values()) for p in pages] == [1000, 1000, 505]
    assert pages[-1]["next_page_token"] is None
    assert all(p["next_page_token"] for p in pages[:-1])
    # symbol-major lexical order across the whole stream, symbols straddling pages
    stream = [(sym, bar["t"]) for p in pages for sym, bars in p["bars"].items() for bar in bars]
    assert stream == sorted(stream)
    assert list(pages[0]["bars"]) == ["AAPL", "JNJ"]
    assert list(pages[1]["bars"]) == ["JNJ", "JPM", "MSFT"]
    assert sorted(merged) == ["AAPL", "JNJ", "JPM", "MSFT", "XOM"]
    for sym, bars in merged.items():
        stamps = [b["t"] for b in bars]
        assert stamps == [_stamp(d) for d in expected_days], sym  # no gaps, no duplicates
        assert stamps[0] == "2022-01-03T05:00:00Z"
        assert all(isinstance(b["v"], int) and isinstance(b["n"], int) for b in bars)


def test_desc_sort_pages_newest_first_within_each_symbol(client, fetch_all):
    params = {"symbols": "MSFT,AAPL", "timeframe": "1D", "start": "2023-01-01",
              "end": "2023-02-28", "limit": 7, "sort": "desc"}
    merged, pages = fetch_all(client, "/v2/stocks/bars", params)
    assert len(pages) > 2
    stamps = [b["t"] for b in merged["AAPL"]]
    assert stamps == sorted(stamps, reverse=True)
    assert stamps[0] == "2023-02-28T05:00:00Z" and stamps[-1] == "2023-01-03T05:00:00Z"
    assert len(merged["MSFT"]) == len(merged["AAPL"]) == len(
        sessions(dt.date(2023, 1, 1), dt.date(2023, 2, 28)))
    first_keys = [next(iter(p["bars"])) for p in pages if p["bars"]]
    assert first_keys == sorted(first_keys)  # symbols stay in lexical order under desc


def test_last_page_filled_exactly_to_limit_has_null_token_by_default(client):
    body = client.get("/v2/stocks/bars", params={
        "symbols": "AAPL", "timeframe": "1Day", "start": "2023-01-03", "end": "2023-01-06",
        "limit": 4}).json()
    assert len(body["bars"]["AAPL"]) == 4
    assert body["next_page_token"] is None


def test_full_page_token_mode_gives_an_empty_last_page(server, client):
    server.faults.set_full_page_token()
    params = {"symbols": "AAPL", "timeframe": "1Day", "start": "2023-01-03",
              "end": "2023-01-06", "limit": 4}
    first = client.get("/v2/stocks/bars", params=params).json()
    assert len(first["bars"]["AAPL"]) == 4 and first["next_page_token"]
    last = client.get("/v2/stocks/bars",
                      params=params | {"page_token": first["next_page_token"]}).json()
    assert last == {"bars": {}, "next_page_token": None}


@pytest.mark.parametrize("change", [{"symbols": "AAPL,JPM"}, {"end": "2023-03-01"},
                                    {"adjustment": "split"}, {"feed": "iex"}, {"sort": "desc"}])
def test_token_is_only_valid_with_the_same_parameters(client, change):
    params = {"symbols": "AAPL", "timeframe": "1Day", "start": "2023-01-01",
              "end": "2023-02-01", "limit": 3}
    token = client.get("/v2/stocks/bars", params=params).json()["next_page_token"]
    assert token
    resp = client.get("/v2/stocks/bars", params=params | change | {"page_token": token})
    assert resp.status_code == 400
    assert "different query parameters" in resp.json()["message"]
    # limit may change between pages (alpaca-py does that), the token stays valid
    ok = client.get("/v2/stocks/bars", params=params | {"limit": 5, "page_token": token})
    assert ok.status_code == 200
    assert ok.json()["bars"]["AAPL"][0]["t"] == "2023-01-06T05:00:00Z"


@pytest.mark.parametrize("token", ["null", "not-base64!", base64.b64encode(b"x").decode(),
                                   base64.b64encode(json.dumps({"v": 1}).encode()).decode()])
def test_bad_tokens_are_400(client, token):
    resp = client.get("/v2/stocks/bars", params={
        "symbols": "AAPL", "timeframe": "1Day", "start": "2023-01-01", "page_token": token})
    assert resp.status_code == 400
    assert resp.json()["message"].startswith("invalid page_token")


def test_empty_page_token_means_first_page(client):
    resp = client.get("/v2/stocks/bars", params={
        "symbols": "AAPL", "timeframe": "1Day", "start": "2023-01-03", "end": "2023-01-03",
        "page_token": ""})
    assert resp.status_code == 200 and len(resp.json()["bars"]["AAPL"]) == 1


def test_symbols_without_data_are_omitted_and_unknown_symbols_are_not_errors(client):
    body = client.get("/v2/stocks/bars", params={
        "symbols": "ZZZZ,AAPL,FB", "timeframe": "1Day", "start": "2023-01-03",
        "end": "2023-01-04", "asof": "-"}).json()
    assert list(body["bars"]) == ["AAPL"]
    empty = client.get("/v2/stocks/bars", params={
        "symbols": "ZZZZ", "timeframe": "1Day", "start": "2023-01-03"}).json()
    assert empty == {"bars": {}, "next_page_token": None}


def test_single_symbol_route_pages_and_returns_null_when_empty(client, fetch_all):
    path = "/v2/stocks/AAPL/bars"
    params = {"timeframe": "1Day", "start": "2023-01-01", "end": "2023-01-31", "limit": 5}
    pages, token = [], None
    while True:
        body = client.get(path, params=params | ({"page_token": token} if token else {})).json()
        assert body["symbol"] == "AAPL"
        pages.append(body["bars"])
        token = body["next_page_token"]
        if token is None:
            break
    assert sum(len(p) for p in pages) == len(sessions(dt.date(2023, 1, 1), dt.date(2023, 1, 31)))
    empty = client.get(path, params={"timeframe": "1Day", "start": "2019-01-01",
                                     "end": "2019-02-01"}).json()
    assert empty == {"bars": None, "symbol": "AAPL", "next_page_token": None}
    bad = client.get("/v2/stocks/AAPL,MSFT/bars", params={"timeframe": "1Day"})
    assert bad.status_code == 400 and bad.json()["message"] == "invalid symbol"


def test_latest_routes_return_the_last_completed_daily_bar(client, market):
    body = client.get("/v2/stocks/bars/latest", params={"symbols": "AAPL,ZZZZ"}).json()
    assert list(body["bars"]) == ["AAPL"]
    assert body["bars"]["AAPL"]["t"] == "2024-01-31T05:00:00Z"  # the data ends 2024-01-31
    raw = market.bars.filter(symbol="AAPL").tail(1).row(0, named=True)
    assert body["bars"]["AAPL"]["c"] == raw["close"]
    single = client.get("/v2/stocks/AAPL/bars/latest").json()
    assert single == {"symbol": "AAPL", "bar": body["bars"]["AAPL"]}
    missing = client.get("/v2/stocks/ZZZZ/bars/latest")
    assert missing.status_code == 404


def test_unfinished_sessions_are_hidden_and_start_defaults_to_today(make_server, auth):
    import httpx

    # 2022-03-15 15:00 UTC = 11:00 New York: the 2022-03-15 session has not closed yet
    srv = make_server(clock=lambda: dt.datetime(2022, 3, 15, 15, 0, tzinfo=dt.UTC))
    with httpx.Client(base_url=srv.url, headers=auth) as c:
        body = c.get("/v2/stocks/bars", params={
            "symbols": "AAPL", "timeframe": "1Day", "start": "2022-03-10"}).json()
        assert body["bars"]["AAPL"][-1]["t"] == "2022-03-14T04:00:00Z"
        # default start = beginning of today (New York): today's bar is not complete
        assert c.get("/v2/stocks/bars", params={"symbols": "AAPL", "timeframe": "1Day"}
                     ).json() == {"bars": {}, "next_page_token": None}
    late = make_server(clock=lambda: dt.datetime(2022, 3, 15, 21, 0, tzinfo=dt.UTC))
    with httpx.Client(base_url=late.url, headers=auth) as c:
        body = c.get("/v2/stocks/bars", params={"symbols": "AAPL", "timeframe": "1Day"}).json()
        assert [b["t"] for b in body["bars"]["AAPL"]] == ["2022-03-15T04:00:00Z"]


def test_default_synthetic_market_serves_every_core_session(make_server, auth, fetch_all,
                                                            tls_context):
    """The acceptance check on the market `aurora emulator` serves by default."""
    import httpx

    from aurora_testbed.emulator import MarketData

    market = MarketData.synthetic(CORE.split(","), dt.date(2021, 6, 1), dt.date(2024, 3, 28))
    server = make_server(market)
    with httpx.Client(base_url=server.url, headers=auth, timeout=10, verify=tls_context) as c:
        merged, pages = fetch_all(c, "/v2/stocks/bars",
                                  {"symbols": CORE, "limit": 1000, "adjustment": "raw", **RANGE})
    assert len(pages) == 3
    assert {sym: len(bars) for sym, bars in merged.items()} == dict.fromkeys(CORE.split(","), 501)
    assert {bars[0]["t"] for bars in merged.values()} == {"2022-01-03T05:00:00Z"}
