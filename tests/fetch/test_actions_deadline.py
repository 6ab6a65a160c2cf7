"""Corporate-actions request groups are bounded in time like bars request groups: each has
the request-group deadline (`fetch.request_group_deadline_seconds`), and the whole fetch's
deadline when the caller passes one. Before, `fetch_corporate_actions` called `get_json`
without a deadline, so a slow endless page loop ran until the page cap (here 83 pages,
8300 s of fake time)."""

from __future__ import annotations

import base64
import datetime as dt
import random

import httpx
import pytest
from fetch_fakeapi import KEY, SECRET

from aurora.deadline import Deadline, DeadlineExceeded
from aurora.fetch.client import AlpacaBarsClient
from aurora.fetch.corporate_actions import fetch_corporate_actions
from aurora.fetch.ratelimit import RateLimiter
from aurora.retry import RetryPolicy

D = dt.date
SYMBOLS = [f"S{i:02d}" for i in range(50)]
FIVE_YEARS = (D(2019, 3, 1), D(2024, 2, 29))  # page cap for 50 symbols: 83 pages
T0 = 1_700_000_000.0  # the fake clock's start


def make_client(transport: httpx.BaseTransport, clock, **kwargs) -> AlpacaBarsClient:
    limiter = RateLimiter(10_000, clock=clock.time, sleep=clock.sleep)
    return AlpacaBarsClient("http://api.test", KEY, SECRET, limiter=limiter,
                            policy=RetryPolicy(3, 0.5, 8.0, rng=random.Random(1)),
                            transport=transport, sleep=clock.sleep, monotonic=clock.time,
                            **kwargs)


def slow_actions(clock, *, seconds: float, pages: int | None = None):
    """/v1/corporate-actions where every page takes `seconds` of fake time; a group ends
    after `pages` pages (None: fresh tokens forever). Returns (transport, calls)."""
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        clock.sleep(seconds)  # the server is slow to answer
        calls.append(request.url.params["symbols"])
        token = request.url.params.get("page_token")
        page = int(base64.b64decode(token)) + 1 if token else 1
        more = pages is None or page < pages
        return httpx.Response(200, json={
            "corporate_actions": {},
            "next_page_token": base64.b64encode(str(page).encode()).decode() if more else None})

    return httpx.MockTransport(handler), calls


def test_a_slow_endless_actions_loop_stops_at_the_request_group_deadline(clock):
    transport, calls = slow_actions(clock, seconds=100)
    with make_client(transport, clock) as client, pytest.raises(DeadlineExceeded) as info:
        fetch_corporate_actions(client, SYMBOLS, *FIVE_YEARS)
    assert str(info.value) == ("GET /v1/corporate-actions for S00..S49 (50 symbols): request "
                               "group exceeded its 600 s deadline")
    assert info.value.deadline.what == "request group" and info.value.deadline.seconds == 600
    assert len(calls) == 6 and clock.now - T0 == 600  # not 83 pages, 8300 s


def test_the_group_deadline_is_the_setting_and_each_group_has_its_own(clock):
    """Two groups of 25 symbols, 4 pages of 100 s each: 800 s in all, 400 s per group, so a
    500 s group deadline lets both finish; one of 300 s stops the first group."""
    transport, calls = slow_actions(clock, seconds=100, pages=4)
    with make_client(transport, clock, group_deadline_seconds=500) as client:
        table = fetch_corporate_actions(client, SYMBOLS, *FIVE_YEARS, batch_size=25)
    assert table.height == 0 and len(calls) == 8 and clock.now - T0 == 800
    calls.clear()
    with make_client(transport, clock, group_deadline_seconds=300) as client, \
            pytest.raises(DeadlineExceeded, match=r"^GET /v1/corporate-actions for S00\.\.S24 "
                                                  r"\(25 symbols\): request group exceeded "
                                                  r"its 300 s deadline$"):
        fetch_corporate_actions(client, SYMBOLS, *FIVE_YEARS, batch_size=25)
    assert len(calls) == 3


def test_the_whole_fetch_deadline_passed_in_bounds_the_actions(clock):
    fetch = Deadline.after(250, "fetch", clock=clock.time)
    transport, calls = slow_actions(clock, seconds=100)
    with make_client(transport, clock) as client, pytest.raises(DeadlineExceeded) as info:
        fetch_corporate_actions(client, SYMBOLS, *FIVE_YEARS, deadline=fetch)
    assert info.value.deadline is fetch  # the stage tells "out of time" from an outage so
    assert str(info.value) == ("GET /v1/corporate-actions for S00..S49 (50 symbols): fetch "
                               "exceeded its 250 s deadline")
    assert len(calls) == 3
