"""AlpacaBarsClient against httpx.MockTransport: window, pagination, parsing, retries."""

from __future__ import annotations

import datetime as dt
import json
import random

import httpx
import pytest
from fetch_fakeapi import KEY, SECRET, FakeAlpaca, bar_time, make_bars

from aurora.errors import CredentialsError
from aurora.fetch.client import AlpacaBarsClient
from aurora.fetch.outcomes import RequestRejected, RetriesExhausted
from aurora.fetch.pages import check_timeframe, rfc3339, session_window
from aurora.fetch.ratelimit import RateLimiter
from aurora.retry import RetryPolicy

D = dt.date


def client_for(api: FakeAlpaca, clock, *, page_limit: int = 10_000, retries: int = 3,
               limit: int = 10_000) -> AlpacaBarsClient:
    limiter = RateLimiter(limit, clock=clock.time, sleep=clock.sleep)
    policy = RetryPolicy(retries, 0.5, 8.0, rng=random.Random(1))
    return AlpacaBarsClient("http://api.test", KEY, SECRET, limiter=limiter, policy=policy,
                            page_limit=page_limit, transport=api.transport(), sleep=clock.sleep)


def test_session_window_covers_end_session_in_utc():
    # winter (EST, UTC-5) start and summer (EDT, UTC-4) end
    start, end = session_window(D(2024, 1, 2), D(2024, 7, 1))
    assert start == "2024-01-02T05:00:00Z"
    assert end == "2024-07-02T03:59:59Z"  # 23:59:59 New York on 2024-07-01
    # the daily bar of the end session (stamped 04:00Z that day) lies inside the window
    assert bar_time(D(2024, 7, 1)) <= end
    with pytest.raises(ValueError):
        session_window(D(2024, 1, 3), D(2024, 1, 2))


def test_timeframes_accepted_and_rejected():
    for ok in ("1Day", "1D", "5Min", "59T", "1Hour", "23H", "1Week", "12Month"):
        assert check_timeframe(ok) == ok
    for bad in ("0Min", "60Min", "24Hour", "2Day", "5Month", "day"):
        with pytest.raises(ValueError):
            check_timeframe(bad)


def test_pagination_appends_symbol_straddling_pages(clock):
    bars = make_bars(["AAA", "BBB", "CCC"], D(2024, 1, 2), D(2024, 1, 31))  # 21 sessions
    api = FakeAlpaca(bars)
    with client_for(api, clock, page_limit=10) as client:
        frame = client.get_bars(["CCC", "AAA", "BBB"], D(2024, 1, 2), D(2024, 1, 31))
    requests = api.bar_requests()
    assert len(requests) == 7  # ceil(63 / 10)
    assert all(r["limit"] == "10" and r["timeframe"] == "1Day" for r in requests)
    assert "page_token" not in requests[0] and all("page_token" in r for r in requests[1:])
    # everything else is unchanged on continuation pages
    assert {k: v for k, v in requests[3].items() if k != "page_token"} == requests[0]
    assert frame.height == 63
    assert frame.group_by("symbol").len().sort("symbol")["len"].to_list() == [21, 21, 21]
    assert frame.select("symbol", "date").is_duplicated().sum() == 0
    assert frame["date"].min() == D(2024, 1, 2) and frame["date"].max() == D(2024, 1, 31)


def test_end_session_bar_is_requested_and_dated_in_new_york(clock):
    # a summer bar stamped 04:00Z must become that New York date, not the previous day
    api = FakeAlpaca(make_bars(["AAA"], D(2024, 6, 3), D(2024, 6, 7)))
    with client_for(api, clock) as client:
        frame = client.get_bars(["AAA"], D(2024, 6, 3), D(2024, 6, 7))
    assert frame["date"].to_list() == [D(2024, 6, d) for d in (3, 4, 5, 6, 7)]
    assert api.bar_requests()[0]["end"] == "2024-06-08T03:59:59Z"


def test_parsing_ignores_unknown_keys_and_allows_missing_optionals(clock):
    body = {"bars": {"AAA": [
        {"t": "2024-01-02T05:00:00Z", "o": 1, "h": 2, "l": 0.5, "c": 1.5, "v": 100,
         "x": "ignored", "n": 7, "vw": 1.2},
        {"t": "2024-01-03T05:00:00Z", "o": 1.5, "h": 2.5, "l": 1, "c": 2, "v": 200,
         "extra": {"nested": True}},
    ], "BBB": None}, "next_page_token": None, "currency": "USD", "new_top_level": 1}
    api = FakeAlpaca({})
    api.faults.append(httpx.Response(200, json=body))
    with client_for(api, clock) as client:
        frame = client.get_bars(["AAA", "BBB"], D(2024, 1, 2), D(2024, 1, 3))
    assert frame.columns == ["date", "symbol", "open", "high", "low", "close", "volume",
                             "vwap", "trade_count"]
    assert frame["trade_count"].to_list() == [7, None]
    assert frame["vwap"].to_list() == [1.2, None]
    assert frame["volume"].to_list() == [100.0, 200.0]


def test_empty_bars_and_null_bars_are_fine(clock):
    api = FakeAlpaca({})
    api.faults += [httpx.Response(200, json={"bars": None, "next_page_token": None})]
    with client_for(api, clock) as client:
        assert client.get_bars(["ZZZ"], D(2024, 1, 2), D(2024, 1, 3)).height == 0
        assert client.get_bars(["ZZZ"], D(2024, 1, 2), D(2024, 1, 3)).height == 0


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_server_errors_retry_with_backoff(clock, status):
    api = FakeAlpaca(make_bars(["AAA"], D(2024, 1, 2), D(2024, 1, 5)))
    api.faults += [httpx.Response(status, text="<html>oops</html>")] * 2
    with client_for(api, clock) as client:
        frame = client.get_bars(["AAA"], D(2024, 1, 2), D(2024, 1, 5))
        stats = client.stats
    assert frame.height == 4
    assert stats.requests == 3 and stats.retries == 2 and stats.successful == 1
    assert len(clock.slept) == 2 and all(0.25 <= s <= 8.0 for s in clock.slept)
    assert clock.slept[1] <= 1.0  # attempt 1 is capped at base * 2


@pytest.mark.parametrize("fault", [
    httpx.ReadTimeout("timed out"),
    httpx.ConnectTimeout("timed out"),
    httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
    httpx.ConnectError("connection refused"),
])
def test_transport_errors_retry(clock, fault):
    api = FakeAlpaca(make_bars(["AAA"], D(2024, 1, 2), D(2024, 1, 5)))
    api.faults.append(fault)
    with client_for(api, clock) as client:
        assert client.get_bars(["AAA"], D(2024, 1, 2), D(2024, 1, 5)).height == 4
        assert client.stats.retries == 1


@pytest.mark.parametrize("body", [b"<html>502 Bad Gateway</html>", b'{"bars": {"AAA": [',
                                  b"[1, 2]", b'{"bars": "nope"}'])
def test_non_json_or_malformed_200_bodies_retry(clock, body):
    api = FakeAlpaca(make_bars(["AAA"], D(2024, 1, 2), D(2024, 1, 5)))
    api.faults.append(httpx.Response(200, content=body))
    with client_for(api, clock) as client:
        assert client.get_bars(["AAA"], D(2024, 1, 2), D(2024, 1, 5)).height == 4
        assert client.stats.retries == 1


def test_backoff_sleeps_are_counted_in_stats(clock):
    api = FakeAlpaca(make_bars(["AAA"], D(2024, 1, 2), D(2024, 1, 5)))
    api.faults += [httpx.Response(503), httpx.ReadTimeout("timed out")]
    with client_for(api, clock) as client:
        client.get_bars(["AAA"], D(2024, 1, 2), D(2024, 1, 5))
        stats = client.stats.to_dict()
    assert (stats["requests"], stats["retries"], stats["successful"]) == (3, 2, 1)
    assert stats["backoff_seconds"] == pytest.approx(sum(clock.slept), abs=1e-3)
    assert stats["statuses"] == {"200": 1, "503": 1, "timeout": 1}


def test_malformed_pages_are_retried_then_give_up(clock):
    api = FakeAlpaca({})
    api.faults += [httpx.Response(200, json={"bars": "nope"})] * 10
    with client_for(api, clock, retries=2) as client, pytest.raises(RetriesExhausted) as info:
        client.get_bars(["AAA"], D(2024, 1, 2), D(2024, 1, 5))
    assert str(info.value) == (
        "GET /v2/stocks/bars for AAA failed after 3 attempts: malformed answer: "
        "'bars' is not an object keyed by symbol")
    assert len(api.log) == 3 and client.stats.retries == 2 and len(clock.slept) == 2


def test_corporate_actions_path_retries_under_the_same_policy(clock):
    api = FakeAlpaca({}, actions={"forward_splits": []})
    api.faults += [httpx.Response(502), httpx.ConnectError("refused")]
    with client_for(api, clock) as client:
        page = client.get_json("/v1/corporate-actions", {"symbols": "AAA"})
        assert client.stats.retries == 2
    assert page["corporate_actions"] == {"forward_splits": []}
    assert [path for path, _ in api.log] == ["/v1/corporate-actions"] * 3


def test_connection_drop_mid_pagination_resumes_same_page(clock):
    api = FakeAlpaca(make_bars(["AAA", "BBB"], D(2024, 1, 2), D(2024, 1, 31)))
    with client_for(api, clock, page_limit=8) as client:
        original = api.__call__

        def flaky(request, calls=[0]):  # noqa: B006 - a counter across calls
            calls[0] += 1
            if calls[0] == 3:
                raise httpx.RemoteProtocolError("connection dropped")
            return original(request)

        client._http._transport = httpx.MockTransport(flaky)
        frame = client.get_bars(["AAA", "BBB"], D(2024, 1, 2), D(2024, 1, 31))
    tokens = [r.get("page_token") for r in api.bar_requests()]
    assert frame.height == 42 and frame.select("symbol", "date").is_duplicated().sum() == 0
    assert len(tokens) == 6 and len(set(tokens)) == 6  # the dropped page was asked again once


def test_429_waits_until_reset_header(clock):
    api = FakeAlpaca(make_bars(["AAA"], D(2024, 1, 2), D(2024, 1, 5)))
    reset = int(clock.now) + 7
    api.faults.append(httpx.Response(429, json={"message": "too many requests"}, headers={
        "X-RateLimit-Limit": "200", "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(reset)}))
    with client_for(api, clock) as client:
        assert client.get_bars(["AAA"], D(2024, 1, 2), D(2024, 1, 5)).height == 4
        assert client.stats.rate_limited == 1 and client.stats.retries == 1
        assert client.limiter.waited_seconds == pytest.approx(7.05, abs=0.01)
    assert clock.now >= reset


def test_429_without_header_backs_off_exponentially(clock):
    api = FakeAlpaca(make_bars(["AAA"], D(2024, 1, 2), D(2024, 1, 5)))
    api.faults += [httpx.Response(429, json={"message": "slow down"})] * 3
    with client_for(api, clock, retries=5) as client:
        assert client.get_bars(["AAA"], D(2024, 1, 2), D(2024, 1, 5)).height == 4
        waits = list(clock.slept)
    assert len(waits) == 3
    assert waits[0] <= 0.5 and waits[2] <= 2.0 and all(w >= 0.25 for w in waits)


@pytest.mark.parametrize("status", [400, 404, 422])
def test_rejections_never_retry(clock, status):
    api = FakeAlpaca({})
    body = {"code": 42210000, "message": "invalid timeframe"}
    api.faults.append(httpx.Response(status, json=body))
    with client_for(api, clock) as client, pytest.raises(RequestRejected, match="timeframe"):
        client.get_bars(["AAA"], D(2024, 1, 2), D(2024, 1, 5))
    assert len(api.log) == 1 and clock.slept == []


@pytest.mark.parametrize("status", [401, 403])
def test_bad_credentials_never_retry_and_name_variables_not_values(clock, status):
    api = FakeAlpaca({})
    api.faults.append(httpx.Response(status, json={"message": f"forbidden {SECRET}"}))
    with client_for(api, clock) as client, pytest.raises(CredentialsError) as info:
        client.get_bars(["AAA"], D(2024, 1, 2), D(2024, 1, 5))
    text = str(info.value)
    assert "APCA_API_KEY_ID" in text and "APCA_API_SECRET_KEY" in text
    assert SECRET not in text and KEY not in text
    assert len(api.log) == 1


def test_subscription_403_is_a_rejection_not_a_credentials_error(clock):
    api = FakeAlpaca({})
    api.faults.append(httpx.Response(
        403, json={"message": "subscription does not permit querying recent SIP data"}))
    with client_for(api, clock) as client, pytest.raises(RequestRejected, match="subscription"):
        client.get_bars(["AAA"], D(2024, 1, 2), D(2024, 1, 5))


def test_retries_are_bounded_and_error_is_scrubbed(clock):
    api = FakeAlpaca({})
    api.faults += [httpx.Response(500, text=f"boom {SECRET}")] * 10
    with client_for(api, clock, retries=3) as client, pytest.raises(RetriesExhausted) as info:
        client.get_bars(["AAA"], D(2024, 1, 2), D(2024, 1, 5))
    assert len(api.log) == 4 and "4 attempts" in str(info.value)
    assert SECRET not in str(info.value)


def test_auth_headers_sent(clock):
    api = FakeAlpaca(make_bars(["AAA"], D(2024, 1, 2), D(2024, 1, 3)))
    with client_for(api, clock) as client:
        client.get_bars(["AAA"], D(2024, 1, 2), D(2024, 1, 3))
    assert api.headers[0]["APCA-API-KEY-ID"] == KEY
    assert api.headers[0]["APCA-API-SECRET-KEY"] == SECRET
    assert json.loads(json.dumps(dict(api.bar_requests()[0])))["symbols"] == "AAA"


def test_session_window_stays_out_of_the_last_15_minutes_of_sip():
    import datetime as dt

    from aurora.fetch.pages import session_window

    day = dt.date(2024, 7, 1)  # EDT: NY midnight is 04:00Z
    assert session_window(day, day) == ("2024-07-01T04:00:00Z", "2024-07-02T03:59:59Z")
    evening = dt.datetime(2024, 7, 1, 21, 30, tzinfo=dt.UTC)  # 17:30 New York, same day
    assert session_window(day, day, not_after=evening)[1] == "2024-07-01T21:30:00Z"
    too_early = dt.datetime(2024, 7, 1, 1, 0, tzinfo=dt.UTC)
    assert session_window(day, day, not_after=too_early)[1] == "2024-07-01T04:00:00Z"


@pytest.mark.parametrize("retry_after", ["12", "HTTP-DATE"])
def test_429_without_reset_header_honours_retry_after(clock, retry_after):
    import email.utils

    api = FakeAlpaca(make_bars(["AAA"], D(2024, 1, 2), D(2024, 1, 5)))
    if retry_after == "HTTP-DATE":
        retry_after = email.utils.formatdate(clock.now + 12, usegmt=True)
    api.faults.append(httpx.Response(429, json={"message": "slow down"},
                                     headers={"Retry-After": retry_after}))
    with client_for(api, clock) as client:
        assert client.get_bars(["AAA"], D(2024, 1, 2), D(2024, 1, 5)).height == 4
        assert client.stats.rate_limited == 1
        assert client.limiter.waited_seconds == pytest.approx(12.0, abs=1.0)


def test_a_retry_after_of_zero_backs_off_instead_of_retrying_at_once(clock):
    api = FakeAlpaca(make_bars(["AAA"], D(2024, 1, 2), D(2024, 1, 5)))
    api.faults += [httpx.Response(429, json={"message": "slow down"},
                                  headers={"Retry-After": "0"})] * 2
    with client_for(api, clock) as client:
        assert client.get_bars(["AAA"], D(2024, 1, 2), D(2024, 1, 5)).height == 4
    assert len(clock.slept) == 2 and all(w >= 0.25 for w in clock.slept)


def test_a_stream_fill_of_sip_minutes_asks_up_to_the_minute_it_was_given(clock):
    """The free plan's 15-minute SIP delay caps a session window, not a stream's fill: a
    plan that streams SIP serves its recent minutes (the contract's plan table)."""
    api = FakeAlpaca({})
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    first, last = now - dt.timedelta(minutes=5), now - dt.timedelta(minutes=1)
    with client_for(api, clock) as client:
        client.get_bars(["AAA"], first.date(), first.date(), timeframe="1Min",
                        adjustment="raw", feed="sip", between=(first, last))
    sent = api.log[0][1]
    assert (sent["start"], sent["end"]) == (rfc3339(first), rfc3339(last))
