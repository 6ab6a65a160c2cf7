"""The page caps leave room for a server that ends a page at every symbol.

Alpaca documents that a page may hold fewer than `limit` bars. The bars cap was
2 x ceil(symbols x sessions / limit) + 5: 7 pages for a 50-symbol incremental batch, so a
server answering one symbol per page failed every daily fetch. The cap now adds one page
per symbol; an endless page-token loop still stops.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import random

import httpx
import pytest
from fetch_fakeapi import KEY, SECRET, FakeAlpaca, make_bars

from aurora.errors import FetchError
from aurora.fetch.client import AlpacaBarsClient
from aurora.fetch.corporate_actions import fetch_corporate_actions
from aurora.fetch.pages import PagingError, max_pages
from aurora.fetch.ratelimit import RateLimiter
from aurora.retry import RetryPolicy

D = dt.date
SYMBOLS = [f"S{i:02d}" for i in range(50)]
WEEK = (D(2024, 2, 22), D(2024, 2, 29))  # an incremental window: 6 sessions


def make_client(transport: httpx.BaseTransport, clock) -> AlpacaBarsClient:
    limiter = RateLimiter(10_000, clock=clock.time, sleep=clock.sleep)
    return AlpacaBarsClient("http://api.test", KEY, SECRET, limiter=limiter,
                            policy=RetryPolicy(2, 0.5, 8.0, rng=random.Random(1)),
                            transport=transport, sleep=clock.sleep, monotonic=clock.time)


def _token(index: int) -> str:
    return base64.b64encode(str(index).encode()).decode()


def one_symbol_per_page(api: FakeAlpaca) -> httpx.MockTransport:
    """Bars served one symbol per page (each page far below `limit`), as a server that
    splits its pages per symbol may do."""
    def handler(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        symbols = sorted(params["symbols"].split(","))
        token = params.get("page_token")
        index = int(base64.b64decode(token)) if token else 0
        single = request.url.copy_set_param("symbols", symbols[index]).copy_remove_param(
            "page_token")
        page = json.loads(api(httpx.Request("GET", single, headers=request.headers)).content)
        page["next_page_token"] = _token(index + 1) if index + 1 < len(symbols) else None
        return httpx.Response(200, json=page)
    return httpx.MockTransport(handler)


def test_a_server_answering_one_symbol_per_page_passes_for_50_symbols(clock):
    api = FakeAlpaca(make_bars(SYMBOLS, D(2024, 1, 2), D(2024, 2, 29)))
    with make_client(one_symbol_per_page(api), clock) as client:
        frame = client.get_bars(SYMBOLS, *WEEK)
    assert len(api.bar_requests()) == 50  # one page per symbol, past the old cap of 7
    assert frame.height == 50 * 6
    assert frame.get_column("symbol").unique().sort().to_list() == SYMBOLS


def test_the_cap_counts_one_page_per_symbol():
    assert max_pages(50, 6, "1Day", 10_000) == 2 * 1 + 50 + 5
    assert max_pages(1, 500, "1Day", 10_000) == 2 * 1 + 1 + 5
    assert max_pages(50, 504, "1Day", 10_000) == 2 * 3 + 50 + 5  # 25200 bars


def test_an_endless_loop_of_one_symbol_pages_still_stops(clock):
    """Fresh tokens forever, each page one symbol's bars: stopped at the cap."""
    calls: list[str] = []
    bar = make_bars(["S00"], *WEEK)["S00"]

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.params.get("page_token", ""))
        return httpx.Response(200, json={"bars": {"S00": bar},
                                         "next_page_token": _token(len(calls))})

    with make_client(httpx.MockTransport(handler), clock) as client, \
            pytest.raises(PagingError) as info:
        client.get_bars(SYMBOLS, *WEEK)
    assert str(info.value) == (
        "GET /v2/stocks/bars for S00..S49 (50 symbols): more than 57 pages for 50 symbols x "
        "6 sessions at 10000 bars per page; stopped paging")
    assert len(calls) == 57 and isinstance(info.value, FetchError)


def test_corporate_actions_one_symbol_per_page_pass_and_an_endless_loop_stops(clock):
    """The actions endpoint's cap has the same room: 50 symbols over a quarter needed 9
    pages at most before (2 x ceil(1150 / 1000) + 5)."""
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        symbols = request.url.params["symbols"].split(",")
        token = request.url.params.get("page_token")
        index = int(base64.b64decode(token)) if token else 0
        calls.append(symbols[index])
        record = {"id": f"d-{symbols[index]}", "symbol": symbols[index], "rate": 0.1,
                  "process_date": "2024-02-10", "ex_date": "2024-02-08"}
        more = index + 1 < len(symbols)
        return httpx.Response(200, json={"corporate_actions": {"cash_dividends": [record]},
                                         "next_page_token": _token(index + 1) if more else None})

    with make_client(httpx.MockTransport(handler), clock) as client:
        table = fetch_corporate_actions(client, SYMBOLS, D(2023, 11, 29), D(2024, 2, 29))
    assert calls == SYMBOLS and table.height == 50

    def endless(request: httpx.Request) -> httpx.Response:
        calls.append("again")
        return httpx.Response(200, json={"corporate_actions": {},
                                         "next_page_token": _token(len(calls))})

    calls.clear()
    with make_client(httpx.MockTransport(endless), clock) as client, \
            pytest.raises(PagingError, match=r"more than 59 pages for 50 symbols over 93 days"):
        fetch_corporate_actions(client, SYMBOLS, D(2023, 11, 29), D(2024, 2, 29))
    assert len(calls) == 59
