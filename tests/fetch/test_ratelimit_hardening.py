"""RateLimiter against state from the future, unbounded waits and silent sleeps; the retry
policy against a deadline (fake clock: nothing really sleeps)."""

from __future__ import annotations

import json
import logging
import random

import pytest

from aurora.fetch.ratelimit import RateLimiter
from aurora.retry import GaveUp, RetryPolicy, TransientFailure

YEAR = 365 * 86_400.0
LOGGER = "aurora.fetch.ratelimit"


def write_state(path, *, starts, blocked_until=0.0):
    path.write_text(json.dumps({"limit_per_minute": 5, "window_seconds": 61.0,
                                "request_starts": starts, "blocked_until": blocked_until}))


def test_state_from_a_year_ahead_is_ignored_with_a_warning(tmp_path, clock, caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    state = tmp_path / "ratelimit.json"
    ahead = clock.now + YEAR
    write_state(state, starts=[ahead + i for i in range(5)], blocked_until=ahead + 10)
    limiter = RateLimiter(5, state_path=state, clock=clock.time, sleep=clock.sleep)
    assert limiter.acquire() == 0
    assert clock.slept == [] and limiter.waited_seconds == 0
    assert json.loads(state.read_text())["request_starts"] == [clock.now]
    [record] = caplog.records
    text = record.getMessage()
    assert text.startswith(f"ignored rate-limit state from the future ({state}): 5 request "
                           "time(s) up to 2024-11-13T22:13:24Z and a block until "
                           "2024-11-13T22:13:30Z")
    assert "clock stepped back" in text and "another host" in text


def test_recent_state_within_a_window_is_still_honoured(tmp_path, clock, caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    state = tmp_path / "ratelimit.json"
    # another process's requests a moment ago (and one 2 s ahead: clocks differ a little)
    write_state(state, starts=[clock.now - 10, clock.now - 5, clock.now - 1, clock.now,
                               clock.now + 2])
    limiter = RateLimiter(5, state_path=state, clock=clock.time, sleep=clock.sleep)
    assert limiter.in_window() == 5
    assert limiter.acquire() == pytest.approx(51.0)  # until the oldest leaves the window
    assert [r.getMessage() for r in caplog.records] == [
        "waiting 51 s for the rate limit (5 requests in 61 s)"]


def test_clock_stepped_back_mid_run_does_not_sleep_for_the_gap(clock, caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    limiter = RateLimiter(3, clock=clock.time, sleep=clock.sleep)
    for _ in range(3):
        limiter.acquire()
    clock.now -= YEAR  # NTP steps the clock back a year
    assert limiter.acquire() == 0
    assert clock.slept == []
    assert "from the future (in memory): 3 request time(s)" in caplog.records[0].getMessage()


def test_every_single_wait_is_capped(clock):
    limiter = RateLimiter(200, clock=clock.time, sleep=clock.sleep)
    limiter.block_for(10 * 86_400)  # e.g. a backoff computed from a bad setting
    assert limiter.acquire() == 300.0
    # a reset header far out is not trusted at all (backoff then applies)
    assert not limiter.block_until_reset({"x-ratelimit-reset": str(clock.now + 3600)})


def test_long_waits_are_said_with_their_cause(clock, caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    limiter = RateLimiter(200, clock=clock.time, sleep=clock.sleep)
    limiter.observe({"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(clock.now + 42)})
    assert limiter.acquire(context=" before GET /v2/stocks/bars for AAA") == pytest.approx(42.05)
    limiter.observe({"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(clock.now + 2)})
    limiter.acquire()  # 2 s: not worth a warning
    assert [r.getMessage() for r in caplog.records] == [
        "waiting 42 s for the rate limit (X-RateLimit-Remaining: 0, until X-RateLimit-Reset) "
        "before GET /v2/stocks/bars for AAA"]
    assert all(r.levelno == logging.WARNING for r in caplog.records)


def test_acquire_refuses_a_wait_longer_than_the_caller_allows(tmp_path, clock):
    from aurora.fetch.ratelimit import WaitRefused

    state = tmp_path / "ratelimit.json"
    limiter = RateLimiter(200, state_path=state, clock=clock.time, sleep=clock.sleep)
    limiter.block_for(100, why="HTTP 429 without a usable X-RateLimit-Reset, backing off")
    with pytest.raises(WaitRefused) as info:
        limiter.acquire(max_wait=30)
    assert (info.value.wait, info.value.allowed) == (100, 30)
    assert str(info.value) == ("waiting 100 s for the rate limit (HTTP 429 without a usable "
                               "X-RateLimit-Reset, backing off) exceeds the 30 s allowed")
    assert clock.slept == [] and json.loads(state.read_text())["request_starts"] == []
    assert limiter.acquire(max_wait=100) == 100


def test_retry_policy_does_not_sleep_into_a_deadline(clock):
    from aurora.deadline import Deadline
    from aurora.retry import OutOfTime

    deadline = Deadline.after(10, "request group", clock=clock.time)
    attempts: list[int] = []

    def attempt(retries: int) -> None:
        attempts.append(retries)
        raise TransientFailure("HTTP 503")

    policy = RetryPolicy(10, 2.0, 60.0, jitter=False)  # 2, 4, 8, ...
    with pytest.raises(OutOfTime) as info:
        policy.call(attempt, sleep=clock.sleep, deadline=deadline)
    assert clock.slept == [2.0, 4.0]  # 8 more would end at 14 s, past 10 s
    assert (info.value.attempts, info.value.problem) == (3, "HTTP 503")
    assert info.value.deadline is deadline and isinstance(info.value, GaveUp)
    # without a deadline the same policy runs out of retries as before
    with pytest.raises(GaveUp) as spent:
        RetryPolicy(2, 0.5, 1.0, rng=random.Random(0)).call(attempt, sleep=clock.sleep)
    assert type(spent.value) is GaveUp and spent.value.attempts == 3
