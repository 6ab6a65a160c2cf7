"""The fetch client under hostile servers: endless page tokens, deadlines, 429 storms,
malformed answers and bad credentials (httpx.MockTransport with a fake clock).

Every test here failed on the client before the hardening: it looped, slept or retried
for as long as the server wanted, or let a malformed answer through.
"""

from __future__ import annotations

import datetime as dt
import logging
import random

import httpx
import pytest
from fetch_fakeapi import KEY, SECRET, FakeAlpaca, bar_time, make_bars

from aurora.config import AlpacaConfig
from aurora.errors import CredentialsError, FetchError
from aurora.fetch.client import AlpacaBarsClient
from aurora.fetch.ratelimit import RateLimiter
from aurora.retry import RetryPolicy

D = dt.date
JAN = (D(2024, 1, 2), D(2024, 1, 31))  # 21 sessions


def make_client(transport: httpx.BaseTransport, clock, *, retries: int = 3,
                policy: RetryPolicy | None = None, **kwargs) -> AlpacaBarsClient:
    limiter = RateLimiter(10_000, clock=clock.time, sleep=clock.sleep)
    policy = policy or RetryPolicy(retries, 0.5, 8.0, rng=random.Random(1))
    return AlpacaBarsClient("http://api.test", KEY, SECRET, limiter=limiter, policy=policy,
                            transport=transport, sleep=clock.sleep, **kwargs)


def one_bar(day: dt.date, price: float = 10.0) -> dict:
    return {"t": bar_time(day), "o": price, "h": price + 1, "l": price - 1, "c": price,
            "v": 100}


def paging_server(token_for, *, bars=None, give_up_after: int = 300, advance=None):
    """A server that answers every bars request with `bars` and `token_for(n)` (n = 1, 2,
    ...) until request `give_up_after`, which ends the loop (so the old client returned
    instead of hanging); `advance(n)` runs first (e.g. to let fake time pass)."""
    calls: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(dict(request.url.params))
        n = len(calls)
        if advance is not None:
            advance(n)
        token = token_for(n) if n < give_up_after else None
        return httpx.Response(200, json={"bars": bars or {}, "next_page_token": token})

    return httpx.MockTransport(handler), calls


# -- item 3: page-token loops -----------------------------------------------------------------
def test_a_repeated_page_token_fails_the_request_group(clock):
    transport, calls = paging_server(lambda n: "c2FtZQ==",
                                     bars={"AAA": [one_bar(D(2024, 1, 2))]})
    with make_client(transport, clock) as client, pytest.raises(FetchError) as info:
        client.get_bars(["AAA", "BBB"], *JAN)
    assert str(info.value) == (
        "GET /v2/stocks/bars for AAA, BBB: the server returned the same next_page_token "
        "twice (after page 2); stopped paging")
    assert len(calls) == 2
    assert "\n" not in str(info.value)


def test_fresh_tokens_forever_stop_at_what_the_request_can_need(clock):
    symbols = [f"S{i:02d}" for i in range(50)]
    transport, calls = paging_server(lambda n: f"token-{n}")
    with make_client(transport, clock) as client, pytest.raises(FetchError) as info:
        client.get_bars(symbols, *JAN)
    # 50 x 21 bars fit one page of 10000: the cap is 2 * 1 + 50 (one page per symbol) + 5
    assert str(info.value) == (
        "GET /v2/stocks/bars for S00..S49 (50 symbols): more than 57 pages for 50 symbols x "
        "21 sessions at 10000 bars per page; stopped paging")
    assert len(calls) == 57


def test_page_cap_leaves_room_for_half_full_pages(clock):
    """A server that fills pages only half way (allowed: "may return fewer") still works."""
    bars = make_bars(["AAA", "BBB", "CCC"], *JAN)  # 63 bars
    api = FakeAlpaca(bars)

    def half_pages(request: httpx.Request) -> httpx.Response:
        half = int(request.url.params["limit"]) // 2
        return api(httpx.Request("GET", request.url.copy_set_param("limit", str(half)),
                                 headers=request.headers))

    with make_client(httpx.MockTransport(half_pages), clock, page_limit=10) as client:
        frame = client.get_bars(["AAA", "BBB", "CCC"], *JAN)
    assert frame.height == 63
    assert len(api.bar_requests()) == 13  # ceil(63 / 5), under the cap of 2 * 7 + 5


def test_request_group_deadline_stops_a_slow_endless_loop(clock):
    from aurora.deadline import DeadlineExceeded

    symbols = [f"S{i:02d}" for i in range(50)]
    # each page takes 8 s; 1050 bars at 10 per page would allow 265 pages
    transport, calls = paging_server(lambda n: f"token-{n}", advance=lambda n: clock.sleep(8))
    with make_client(transport, clock, page_limit=10, group_deadline_seconds=30,
                     monotonic=clock.time) as client, pytest.raises(DeadlineExceeded) as info:
        client.get_bars(symbols, *JAN)
    assert str(info.value) == (
        "GET /v2/stocks/bars for S00..S49 (50 symbols): request group exceeded its 30 s "
        "deadline")
    assert len(calls) == 4 and clock.now - 1_700_000_000.0 == 32


def test_group_deadline_is_not_slept_into_by_backoff(clock):
    from aurora.deadline import DeadlineExceeded

    api = FakeAlpaca({})
    api.faults += [httpx.Response(503)] * 50
    policy = RetryPolicy(20, 4.0, 8.0, jitter=False)  # 4, 8, 8, 8, ... seconds
    with make_client(api.transport(), clock, policy=policy, group_deadline_seconds=30,
                     monotonic=clock.time) as client, pytest.raises(DeadlineExceeded) as info:
        client.get_bars(["AAA"], *JAN)
    assert str(info.value) == (
        "GET /v2/stocks/bars for AAA: request group exceeded its 30 s deadline (no time left "
        "to retry after 5 attempt(s); last problem: HTTP 503)")
    assert clock.slept == [4.0, 8.0, 8.0, 8.0]  # the next 8 s would end past 30 s
    assert len(api.log) == 5


def test_a_callers_deadline_bounds_get_bars_and_get_json(clock):
    from aurora.deadline import Deadline, DeadlineExceeded

    fetch = Deadline.after(20, "fetch", clock=clock.time)
    transport, calls = paging_server(lambda n: f"token-{n}", advance=lambda n: clock.sleep(6))
    with make_client(transport, clock, page_limit=10, monotonic=clock.time) as client:
        with pytest.raises(DeadlineExceeded) as info:
            client.get_bars([f"S{i:02d}" for i in range(50)], *JAN, deadline=fetch)
        assert info.value.deadline is fetch
        assert "fetch exceeded its 20 s deadline" in str(info.value)
        assert len(calls) == 4  # 24 s > 20 s
        # a client-wide deadline also covers plain get_json (corporate actions)
        late = AlpacaBarsClient("http://api.test", KEY, SECRET, limiter=client.limiter,
                                transport=transport, sleep=clock.sleep, deadline=fetch)
        with late, pytest.raises(DeadlineExceeded, match="fetch exceeded its 20 s deadline"):
            late.get_json("/v1/corporate-actions", {})
    assert len(calls) == 4


def test_rate_limit_wait_past_the_deadline_fails_without_waiting(clock):
    from aurora.deadline import DeadlineExceeded

    api = FakeAlpaca(make_bars(["AAA"], *JAN))
    with make_client(api.transport(), clock, group_deadline_seconds=30,
                     monotonic=clock.time) as client:
        client.limiter.block_for(100)
        with pytest.raises(DeadlineExceeded) as info:
            client.get_bars(["AAA"], *JAN)
    assert "request group exceeded its 30 s deadline (it would wait 100 s more for the rate " \
           "limit" in str(info.value)
    assert clock.slept == [] and api.log == []


# -- item 21: 429 storms ------------------------------------------------------------------------
def storm(clock, *, reset_in: int = 60):
    """Every request gets 429 with X-RateLimit-Reset `reset_in` seconds ahead."""
    calls: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(clock.now)
        return httpx.Response(429, json={"message": "too many requests"}, headers={
            "X-RateLimit-Limit": "200", "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(int(clock.now) + reset_in)})

    return httpx.MockTransport(handler), calls


def test_a_429_storm_gives_up_after_the_rate_limit_budget_and_says_it_waits(clock, caplog):
    caplog.set_level(logging.WARNING, logger="aurora.fetch.ratelimit")
    transport, calls = storm(clock)
    # 20 retries would have waited 20 minutes before: the default budget is 300 s per request
    with make_client(transport, clock, retries=20) as client, \
            pytest.raises(FetchError) as info:
        client.get_bars(["AAA"], *JAN)
    assert str(info.value) == (
        "GET /v2/stocks/bars for AAA: gave up on the rate limit (HTTP 429 5 time(s), 240 s "
        "waited): 60 s more (HTTP 429, until X-RateLimit-Reset) would pass the 300 s one "
        "request may wait (fetch.max_rate_limit_wait_seconds)")
    assert len(calls) == 5 and sum(clock.slept) == pytest.approx(240.05, abs=0.01)
    waits = [r.getMessage() for r in caplog.records]
    assert len(waits) == 4
    assert waits[0] == ("waiting 60 s for the rate limit (HTTP 429, until X-RateLimit-Reset) "
                        "before GET /v2/stocks/bars for AAA (HTTP 429 1 time(s) so far; it "
                        "gives up after 300 s of waiting)")


def test_rate_limit_budget_is_a_setting(clock):
    from aurora.fetch.outcomes import RateLimitWaitExceeded

    transport, calls = storm(clock, reset_in=30)
    with make_client(transport, clock, retries=20, max_rate_limit_wait_seconds=90) as client, \
            pytest.raises(RateLimitWaitExceeded):
        client.get_json("/v2/stocks/bars", {})
    assert len(calls) == 3 and sum(clock.slept) == pytest.approx(60.05, abs=0.01)


def test_one_retry_budget_per_page_whatever_fails(clock):
    """429s and malformed pages share the page's retries: they no longer multiply
    (a page took up to (retries + 1)**2 attempts, 84 minutes of waiting in the attack)."""
    api = FakeAlpaca({})
    rate_limited = httpx.Response(429, json={"message": "slow down"},
                                  headers={"X-RateLimit-Reset": str(int(clock.now) + 1)})
    api.faults += [rate_limited, rate_limited, rate_limited,
                   httpx.Response(200, json={"bars": "nope"})] * 10
    with make_client(api.transport(), clock, retries=3) as client, \
            pytest.raises(FetchError) as info:
        client.get_bars(["AAA"], *JAN)
    assert len(api.log) == 4
    assert str(info.value) == ("GET /v2/stocks/bars for AAA failed after 4 attempts: "
                               "malformed answer: 'bars' is not an object keyed by symbol")


# -- item 19: malformed answers and credentials ---------------------------------------------------
def test_a_200_without_bars_is_malformed_not_empty(clock):
    api = FakeAlpaca({})
    api.faults += [httpx.Response(200, json={"next_page_token": None})] * 3
    with make_client(api.transport(), clock, retries=2) as client, \
            pytest.raises(FetchError) as info:
        client.get_bars(["AAA"], *JAN)
    assert str(info.value) == ("GET /v2/stocks/bars for AAA failed after 3 attempts: "
                               "malformed answer: the body had no 'bars'")


def test_a_200_without_bars_is_retried(clock):
    api = FakeAlpaca(make_bars(["AAA"], *JAN))
    api.faults.append(httpx.Response(200, json={"message": "maintenance"}))
    with make_client(api.transport(), clock) as client:
        assert client.get_bars(["AAA"], *JAN).height == 21
        assert client.stats.retries == 1


def test_lower_case_symbol_keys_are_normalised_to_upper_case(clock):
    api = FakeAlpaca({})
    api.faults.append(httpx.Response(200, json={
        "bars": {"aaa": [one_bar(D(2024, 1, 2))], "Brk.b": [one_bar(D(2024, 1, 2), 20.0)]},
        "next_page_token": None}))
    with make_client(api.transport(), clock) as client:
        frame = client.get_bars(["AAA", "BRK.B"], *JAN)
    assert frame["symbol"].to_list() == ["AAA", "BRK.B"]
    assert frame["close"].to_list() == [10.0, 20.0]


@pytest.mark.parametrize(("stamp", "shown"), [(None, "null"), (1704171600, "1704171600"),
                                             (["2024-01-02"], '["2024-01-02"]')])
def test_a_bar_without_a_string_timestamp_names_the_symbol(clock, stamp, shown):
    api = FakeAlpaca({})
    bad = dict(one_bar(D(2024, 1, 3)), t=stamp)
    api.faults += [httpx.Response(200, json={
        "bars": {"AAA": [one_bar(D(2024, 1, 2))], "BBB": [one_bar(D(2024, 1, 2)), bad]},
        "next_page_token": None})] * 2
    with make_client(api.transport(), clock, retries=1) as client, \
            pytest.raises(FetchError) as info:
        client.get_bars(["AAA", "BBB"], *JAN)
    assert str(info.value) == (
        "GET /v2/stocks/bars for AAA, BBB failed after 2 attempts: malformed answer: bar 2 "
        f"of BBB has no timestamp ('t' is {shown})")
    assert "\n" not in str(info.value)


def test_an_unreadable_timestamp_names_the_symbol_on_one_line(clock):
    api = FakeAlpaca({})
    api.faults.append(httpx.Response(200, json={
        "bars": {"AAA": [one_bar(D(2024, 1, 2)), dict(one_bar(D(2024, 1, 3)),
                                                       t="yesterday\nat noon")]},
        "next_page_token": None}))
    with make_client(api.transport(), clock) as client, pytest.raises(FetchError) as info:
        client.get_bars(["AAA"], *JAN)
    assert str(info.value) == ('GET /v2/stocks/bars for AAA: a bar of AAA has an '
                               'unreadable timestamp \'t\' = "yesterday\\nat noon"')


@pytest.mark.parametrize(("key", "secret", "name"), [
    (KEY, SECRET + "\n", "APCA_API_SECRET_KEY"),
    (KEY, SECRET + " ", "APCA_API_SECRET_KEY"),
    (" " + KEY, SECRET, "APCA_API_KEY_ID"),
    (KEY, "s3cr\tt-value", "APCA_API_SECRET_KEY"),
    (KEY, "s3cr\x07t-value", "APCA_API_SECRET_KEY"),
    (KEY, "s3cré-value", "APCA_API_SECRET_KEY"),
])
def test_credentials_with_whitespace_or_control_characters_are_refused(key, secret, name):
    with pytest.raises(CredentialsError) as info:
        AlpacaConfig(key_id=key, secret_key=secret).require_credentials()
    text = str(info.value)
    assert text.startswith(name + " ") and "\n" not in text
    assert secret.strip() not in text and key.strip() not in text
    other = {"APCA_API_KEY_ID", "APCA_API_SECRET_KEY"} - {name}
    assert not any(text.startswith(o) for o in other)


def test_client_refuses_a_secret_with_a_newline_before_any_request(clock):
    api = FakeAlpaca({})
    limiter = RateLimiter(100, clock=clock.time, sleep=clock.sleep)
    with pytest.raises(CredentialsError) as info:
        AlpacaBarsClient("http://api.test", KEY, SECRET + "\n", limiter=limiter,
                         transport=api.transport(), sleep=clock.sleep).get_bars(["AAA"], *JAN)
    assert str(info.value).startswith("APCA_API_SECRET_KEY has leading or trailing whitespace")
    assert SECRET not in str(info.value)
    assert api.log == [] and clock.slept == []


def test_clean_credentials_pass():
    assert AlpacaConfig(key_id=KEY, secret_key=SECRET).require_credentials() == (KEY, SECRET)


def test_a_string_price_names_the_symbol_and_field(clock):
    """A string where a number belongs is malformed, not a missing value."""
    api = FakeAlpaca({})
    bad = dict(one_bar(D(2024, 1, 3)), c="12.5")
    api.faults += [httpx.Response(200, json={"bars": {"AAA": [one_bar(D(2024, 1, 2)), bad]},
                                             "next_page_token": None})] * 2
    with make_client(api.transport(), clock, retries=1) as client, \
            pytest.raises(FetchError, match=r"a bar of AAA has a non-numeric 'c' = 12\.5$"):
        client.get_bars(["AAA"], *JAN)
