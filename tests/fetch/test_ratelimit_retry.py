"""RateLimiter (fake clock) and RetryPolicy."""

from __future__ import annotations

import json
import random

import httpx
import pytest
from fetch_fakeapi import FakeClock
from hypothesis import given, settings
from hypothesis import strategies as st

from aurora.fetch.client import AlpacaBarsClient
from aurora.fetch.ratelimit import RateLimiter
from aurora.retry import GaveUp, Outcome, RetryPolicy, TransientFailure, classify_status


def max_in_window(starts: list[float], window: float) -> int:
    best, lo = 0, 0
    for hi, t in enumerate(starts):
        while starts[lo] <= t - window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def test_limiter_paces_under_the_limit(clock):
    limiter = RateLimiter(10, clock=clock.time, sleep=clock.sleep)
    starts = []
    for _ in range(35):
        limiter.acquire()
        starts.append(clock.time())
    assert max_in_window(starts, 60.0) == 10
    # three full windows of waiting (61 s each with the 1 s margin), no more
    assert limiter.waited_seconds == sum(clock.slept)
    assert 3 * 61 - 1e-6 <= limiter.waited_seconds <= 3 * 61 + 1e-6


@settings(max_examples=40, deadline=None)
@given(limit=st.integers(1, 12), gaps=st.lists(st.floats(0, 30), min_size=1, max_size=60))
def test_no_sixty_second_window_exceeds_limit(limit, gaps):
    clock = FakeClock()
    limiter = RateLimiter(limit, clock=clock.time, sleep=clock.sleep)
    starts = []
    for gap in gaps:
        clock.now += gap  # time passing between requests (work, network)
        limiter.acquire()
        starts.append(clock.time())
    assert max_in_window(starts, 60.0) <= limit


def test_limiter_state_persists_across_runs(tmp_path, clock):
    state = tmp_path / "state" / "ratelimit.json"
    first = RateLimiter(5, state_path=state, clock=clock.time, sleep=clock.sleep)
    for _ in range(5):
        first.acquire()
    assert first.waited_seconds == 0
    assert len(json.loads(state.read_text())["request_starts"]) == 5
    clock.now += 10  # a second run starts ten seconds later
    second = RateLimiter(5, state_path=state, clock=clock.time, sleep=clock.sleep)
    assert second.in_window() == 5
    second.acquire()
    assert second.waited_seconds == 61 - 10


def test_damaged_state_file_is_ignored(tmp_path, clock):
    state = tmp_path / "ratelimit.json"
    state.write_text("{not json")
    limiter = RateLimiter(5, state_path=state, clock=clock.time, sleep=clock.sleep)
    assert limiter.in_window() == 0
    limiter.acquire()
    assert json.loads(state.read_text())["request_starts"] == [clock.now]


def test_server_remaining_zero_blocks_until_reset(clock):
    limiter = RateLimiter(200, clock=clock.time, sleep=clock.sleep)
    limiter.acquire()
    limiter.observe({"x-ratelimit-remaining": "3", "x-ratelimit-reset": str(clock.now + 30)})
    assert limiter.acquire() == 0
    limiter.observe({"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(clock.now) + 30)})
    waited = limiter.acquire()
    assert 29 <= waited <= 30.1
    # an absurd reset (an hour away) is not trusted
    assert not limiter.block_until_reset({"x-ratelimit-reset": str(clock.now + 3600)})


def test_client_against_server_window_never_hits_429(clock):
    """A mock server enforcing 10 requests per sliding minute on the same fake clock."""
    limit, seen, statuses = 10, [], []

    def handler(request: httpx.Request) -> httpx.Response:
        now = clock.time()
        recent = [t for t in seen if t > now - 60]
        seen.append(now)
        if len(recent) >= limit:
            statuses.append(429)
            return httpx.Response(429, json={"message": "too many requests"})
        statuses.append(200)
        return httpx.Response(200, json={"ok": True}, headers={
            "X-RateLimit-Remaining": str(limit - len(recent) - 1),
            "X-RateLimit-Reset": str(int(now) + 60)})

    limiter = RateLimiter(limit, clock=clock.time, sleep=clock.sleep)
    client = AlpacaBarsClient("http://api.test", "k", "s", limiter=limiter,
                              transport=httpx.MockTransport(handler), sleep=clock.sleep)
    for _ in range(45):
        client.get_json("/v2/ping", {})
    assert statuses.count(429) == 0 and len(statuses) == 45
    assert limiter.waited_seconds > 0


def test_classify_status():
    assert classify_status(200) is Outcome.OK
    assert classify_status(429) is Outcome.RATE_LIMITED
    assert classify_status(401) is Outcome.CREDENTIALS
    assert classify_status(403) is Outcome.CREDENTIALS
    for status in (500, 502, 503, 504, 408):
        assert classify_status(status) is Outcome.RETRY
    for status in (400, 404, 422, 418):
        assert classify_status(status) is Outcome.REJECTED


def test_backoff_grows_is_capped_and_jittered():
    policy = RetryPolicy(6, 0.5, 4.0, rng=random.Random(3))
    for attempt in range(10):
        ceiling = min(4.0, 0.5 * 2**attempt)
        delays = [policy.backoff(attempt) for _ in range(50)]
        assert all(0.25 <= d <= ceiling for d in delays)
        if attempt >= 2:
            assert len(set(delays)) > 40  # jitter, not a fixed sleep
    assert policy.exhausted(6) and not policy.exhausted(5)


def _flaky(failures: list[TransientFailure | Exception], result: str = "done"):
    """An attempt that raises `failures` in turn, then returns `result`; records retries_done."""
    seen: list[int] = []

    def attempt(retries_done: int) -> str:
        seen.append(retries_done)
        if failures:
            raise failures.pop(0)
        return result

    return attempt, seen


def test_call_retries_transient_failures_with_jittered_backoff():
    slept: list[float] = []
    hooks: list[tuple[str, float]] = []
    policy = RetryPolicy(3, 0.5, 8.0, rng=random.Random(7))
    attempt, seen = _flaky([TransientFailure("HTTP 503"), TransientFailure("timeout")])
    assert policy.call(attempt, sleep=slept.append,
                       on_retry=lambda f, d: hooks.append((f.problem, d))) == "done"
    assert seen == [0, 1, 2]
    assert [p for p, _ in hooks] == ["HTTP 503", "timeout"]
    assert [d for _, d in hooks] == slept
    assert 0.25 <= slept[0] <= 0.5 and 0.25 <= slept[1] <= 1.0
    # the same seed gives the same waits: tests stay deterministic
    again: list[float] = []
    replay = RetryPolicy(3, 0.5, 8.0, rng=random.Random(7))
    replay.call(_flaky([TransientFailure("a"), TransientFailure("b")])[0], sleep=again.append)
    assert again == slept


def test_call_gives_up_after_max_retries_with_the_last_problem():
    slept: list[float] = []
    policy = RetryPolicy(2, 0.5, 8.0, rng=random.Random(1))
    attempt, seen = _flaky([TransientFailure(f"HTTP 50{i}") for i in range(5)])
    with pytest.raises(GaveUp) as info:
        policy.call(attempt, sleep=slept.append)
    assert (info.value.attempts, info.value.problem) == (3, "HTTP 502")
    assert seen == [0, 1, 2] and len(slept) == 2


def test_call_never_retries_other_exceptions():
    slept: list[float] = []
    attempt, seen = _flaky([ValueError("rejected")])
    with pytest.raises(ValueError, match="rejected"):
        RetryPolicy(5).call(attempt, sleep=slept.append)
    assert seen == [0] and slept == []


def test_failure_without_backoff_retries_without_sleeping():
    slept: list[float] = []
    delays: list[float] = []
    attempt, _ = _flaky([TransientFailure("HTTP 429", backoff=False)] * 2)
    RetryPolicy(3, rng=random.Random(0)).call(attempt, sleep=slept.append,
                                              on_retry=lambda _f, d: delays.append(d))
    assert slept == [] and delays == [0.0, 0.0]


def test_unjittered_backoff_doubles_and_is_capped():
    policy = RetryPolicy(10, 5.0, 30.0, jitter=False)
    assert [policy.backoff(n) for n in range(6)] == [5.0, 10.0, 20.0, 30.0, 30.0, 30.0]
    slept: list[float] = []
    with pytest.raises(GaveUp):
        RetryPolicy(4, 0.5, 30.0, jitter=False).call(
            _flaky([TransientFailure("x")] * 9)[0], sleep=slept.append)
    assert slept == [0.5, 1.0, 2.0, 4.0]
