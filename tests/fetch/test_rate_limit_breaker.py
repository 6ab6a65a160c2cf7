"""The fetch's circuit breaker on 429 storms: once a request group gives up on the rate limit
(`RateLimitWaitExceeded`), no new request group is started, so a storm costs about one
group's waiting budget (`fetch.max_rate_limit_wait_seconds`), not one budget per batch.

Before the breaker every batch waited its own budget: 300 symbols measured 34 min of
waiting, 3000 symbols 179 min, bounded only by `fetch.deadline_seconds` (3 h).
"""

from __future__ import annotations

import datetime as dt
import json
import re

import httpx
import pytest
from fetch_fakeapi import KEY, SECRET, FakeAlpaca, make_bars

from aurora.config import AlpacaConfig, AuroraConfig, FetchConfig
from aurora.errors import FetchError
from aurora.fetch import fetch_prices
from aurora.store import Store
from aurora.universe import Universe

D = dt.date
START, END = D(2024, 1, 2), D(2024, 2, 29)
SYMBOLS = [f"S{c}" for c in "ABCDEFGHIJKLMNOPQRST"]  # 20 symbols: 10 batches of 2
BUDGET = 300.0  # fetch.max_rate_limit_wait_seconds (the default)


def config(data_dir, **fetch_settings) -> AuroraConfig:
    return AuroraConfig(
        data_dir=data_dir,
        alpaca=AlpacaConfig(key_id=KEY, secret_key=SECRET, data_url="http://api.test",
                            base_url="http://api.test"),
        fetch=FetchConfig(**{"batch_size": 2, "reconcile_cycle_runs": 0, **fetch_settings}))


def fetch(data_dir, transport, clock, **settings):
    return fetch_prices(config(data_dir, **settings),
                        universe=Universe(tuple(SYMBOLS), {}, "test universe"),
                        start=START, end=END, progress=None, sleep=clock.sleep,
                        clock=clock.time, transport=transport)


def storm(api: FakeAlpaca, clock, *, answered: int = 0, reset_in: int = 60):
    """The bars endpoint answers its first `answered` requests, then refuses every request
    with HTTP 429 forever (X-RateLimit-Reset `reset_in` s ahead on the fake clock)."""
    refused: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/stocks/bars" and len(api.bar_requests()) >= answered:
            api.log.append((request.url.path, dict(request.url.params)))
            refused.append(request.url.params["symbols"])
            return httpx.Response(429, json={"message": "too many requests"}, headers={
                "X-RateLimit-Limit": "200", "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(int(clock.now) + reset_in)})
        return api(request)

    return httpx.MockTransport(handler), refused


def test_a_429_storm_stops_the_fetch_after_one_groups_budget(data_dir, clock):
    api = FakeAlpaca(make_bars(SYMBOLS, START, END))
    transport, refused = storm(api, clock)
    with pytest.raises(FetchError) as info:
        fetch(data_dir, transport, clock)
    # one group waited 4 resets (60 s each) and gave up before a fifth; no other group
    # was started (without the breaker: 10 groups x 240 s = 2400 s, 50 refused requests)
    assert set(refused) == {"SA,SB"} and len(refused) == 5
    waited = sum(clock.slept)
    assert waited <= BUDGET and waited == pytest.approx(240.05, abs=0.01)
    message = str(info.value)
    assert "\n" not in message and SECRET not in message and KEY not in message
    assert re.fullmatch(
        r"the server kept refusing with HTTP 429 \(rate limited\): batch SA\.\.SB \(2 "
        r"symbols, 2024-01-02\.\.2024-02-29\) gave up past the 300 s one request may wait "
        r"\(fetch\.max_rate_limit_wait_seconds\), so no further request group was started; "
        r"the fetch waited 240 s on the rate limit in all; 10 of 10 request groups not "
        r"completed \(20 symbol\(s\) not covered\); nothing was published \(completed "
        r"batches are checkpointed: run again later to resume; report: .*"
        r"fetch-failures\.json\)", message)
    assert info.value.missing_symbols == tuple(SYMBOLS)
    assert Store(data_dir).current_version() is None  # nothing published
    assert not [path for path, _ in api.log if path == "/v1/corporate-actions"]
    failures = json.loads((data_dir / "state" / "fetch-failures.json").read_text())
    assert [f["symbols"] for f in failures["failures"]] == [["SA", "SB"]]
    assert "gave up on the rate limit" in failures["failures"][0]["error"]
    assert failures["rate_limit_wait_seconds"] == pytest.approx(240.05, abs=0.01)


def test_completed_groups_stay_checkpointed_and_the_rerun_resumes(data_dir, clock):
    api = FakeAlpaca(make_bars(SYMBOLS, START, END))
    transport, refused = storm(api, clock, answered=3)  # three batches done, then the storm
    with pytest.raises(FetchError, match=r"kept refusing with HTTP 429.* 7 of 10 request "
                                         r"groups not completed \(14 symbol\(s\)"):
        fetch(data_dir, transport, clock)
    assert set(refused) == {"SG,SH"}
    assert Store(data_dir).current_version() is None
    api.log.clear()
    report = fetch(data_dir, api.transport(), clock)  # the storm is over
    assert report.batches_resumed == 3
    asked = [r["symbols"] for r in api.bar_requests()]
    assert asked == ["SG,SH", "SI,SJ", "SK,SL", "SM,SN", "SO,SP", "SQ,SR", "SS,ST"]
    assert report.symbols == 20 and Store(data_dir).current_version() == report.version


def test_concurrent_groups_in_flight_finish_but_no_new_group_starts(data_dir, clock):
    api = FakeAlpaca(make_bars(SYMBOLS, START, END))
    transport, refused = storm(api, clock)
    with pytest.raises(FetchError, match="kept refusing with HTTP 429"):
        fetch(data_dir, transport, clock, concurrency=2)
    # at most the two groups in flight when the first gave up were ever started
    assert 1 <= len(set(refused)) <= 2
    assert sum(clock.slept) <= 2 * BUDGET


def test_a_group_that_spends_its_retries_on_429s_trips_the_breaker_too(data_dir, clock):
    """With few retries a group gives up on its retries before its waiting budget: that is
    the same storm, and it stops the fetch the same way."""
    api = FakeAlpaca(make_bars(SYMBOLS, START, END))
    transport, refused = storm(api, clock)
    with pytest.raises(FetchError) as info:
        fetch(data_dir, transport, clock, max_retries=2)
    assert refused == ["SA,SB"] * 3  # 3 attempts of one group; no other group started
    assert sum(clock.slept) == pytest.approx(120.05, abs=0.01)
    assert ("batch SA..SB (2 symbols, 2024-01-02..2024-02-29) gave up after its last retry "
            "(fetch.max_retries = 2), so no further request group was started; the fetch "
            "waited 120 s on the rate limit in all; 10 of 10 request groups not completed"
            ) in str(info.value)


def test_other_failures_do_not_trip_the_breaker(data_dir, clock):
    """A batch failing on a 5xx is an ordinary failure: the other batches still go on."""
    api = FakeAlpaca(make_bars(SYMBOLS, START, END))

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("symbols") == "SA,SB":
            return httpx.Response(503, json={"message": "unavailable"})
        return api(request)

    with pytest.raises(FetchError, match=r"1 of 11 request groups failed") as info:
        fetch(data_dir, httpx.MockTransport(handler), clock, max_retries=1)
    assert "HTTP 429" not in str(info.value)
    assert len(api.bar_requests()) == 9  # every other batch was fetched
