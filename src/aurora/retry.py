"""The one retry policy of Aurora (built on tenacity): which outcomes retry, how long to wait.

Used by the market-data client (`AlpacaBarsClient.get_json`, which corporate actions go
through, and the malformed-page retry of `get_bars`) and by the alert webhook
(`aurora.ops.alerts.post_webhook`), each with its own parameters.

Contract:
- An attempt asks for another try by raising `TransientFailure(problem)`. Any other
  exception is not retried and propagates unchanged; a returned value ends the call.
- At most `max_retries` retries per call (so `max_retries + 1` attempts); after the last
  one `RetryPolicy.call` raises `GaveUp(problem, attempts)` with the last problem.
- Before retry number `n + 1` it sleeps `backoff(n)`: exponential with full jitter,
  uniform(base / 2, min(max, base * 2**n)) -- never below `base / 2`, so a burst of failures
  cannot turn into a hot loop -- or exactly min(max, base * 2**n) with `jitter=False`.
- `TransientFailure(problem, backoff=False)` retries without sleeping: the caller already
  waited (HTTP 429 waits in the rate limiter, where it counts as rate-limit time).
- With a `deadline` (`aurora.deadline.Deadline`), a retry whose backoff sleep would end at
  or past it is not made: `call` raises `OutOfTime(problem, attempts, deadline)` (a
  `GaveUp`) at once instead of sleeping into the deadline. The attempt itself should check
  the deadline before its work (the fetch client does).
- For HTTP (`classify_status`): 2xx OK; 429 RATE_LIMITED; 401/403 CREDENTIALS; 408 and 5xx
  RETRY; 400, 404, 422 and every other status REJECTED (never retried).

The random source (`rng`) and `sleep` are injected so tests are deterministic.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TypeVar

import tenacity

from aurora.deadline import Deadline

T = TypeVar("T")


class Outcome(Enum):
    """What to do with one HTTP attempt's result."""

    OK = "ok"
    RATE_LIMITED = "rate_limited"
    RETRY = "retry"
    CREDENTIALS = "credentials"
    REJECTED = "rejected"


def classify_status(status: int) -> Outcome:
    """Map an HTTP status to an `Outcome` (2xx OK; see the module docstring for the rest)."""
    if 200 <= status < 300:
        return Outcome.OK
    if status == 429:
        return Outcome.RATE_LIMITED
    if status in (401, 403):
        return Outcome.CREDENTIALS
    if status == 408 or status >= 500:
        return Outcome.RETRY
    return Outcome.REJECTED


class TransientFailure(Exception):
    """Raised by an attempt that may succeed if tried again. `problem` is a safe description
    (no secrets); `backoff=False` retries without the backoff sleep."""

    def __init__(self, problem: str, *, backoff: bool = True) -> None:
        super().__init__(problem)
        self.problem = problem
        self.backoff = backoff


class GaveUp(Exception):
    """Every allowed attempt failed; `problem` is the last attempt's, `attempts` their count."""

    def __init__(self, problem: str, attempts: int) -> None:
        super().__init__(f"failed after {attempts} attempts: {problem}")
        self.problem = problem
        self.attempts = attempts


class OutOfTime(GaveUp):
    """The next retry's backoff would end at or past `deadline`, so none was made."""

    def __init__(self, problem: str, attempts: int, deadline: Deadline) -> None:
        super().__init__(problem, attempts)
        self.deadline = deadline


RetryHook = Callable[[TransientFailure, float], None]


@dataclass
class RetryPolicy:
    """Bounded exponential backoff with (by default) full jitter and a floor of base / 2.

    `base_seconds` and `max_seconds` are the backoff scale and cap; `max_retries` bounds the
    retries of one call (not of a whole run). The object holds no per-call state, so one
    policy may serve many calls and threads.
    """

    max_retries: int = 6
    base_seconds: float = 0.5
    max_seconds: float = 60.0
    rng: random.Random = field(default_factory=random.Random)
    jitter: bool = True

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt + 1` (attempt counts from 0)."""
        ceiling = min(self.max_seconds, self.base_seconds * (2 ** min(attempt, 30)))
        if not self.jitter:
            return ceiling
        floor = min(ceiling, self.base_seconds / 2)
        return floor + self.rng.random() * (ceiling - floor)

    def exhausted(self, retries_done: int) -> bool:
        """True when no retry is left after `retries_done` retries."""
        return retries_done >= self.max_retries

    def call(
        self,
        attempt: Callable[[int], T],
        *,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: RetryHook | None = None,
        deadline: Deadline | None = None,
    ) -> T:
        """`attempt(retries_done)` until it returns; retried on `TransientFailure` only.

        `on_retry(failure, delay)` runs before each retry (delay 0.0: no sleep follows).
        Raises `GaveUp` when the retries are spent, `OutOfTime` when the next backoff would
        end at or past `deadline`; other exceptions propagate as raised.
        """
        retries_done = 0

        def once() -> T:
            nonlocal retries_done
            try:
                return attempt(retries_done)
            finally:
                retries_done += 1

        def wait(state: tenacity.RetryCallState) -> float:
            failure = _failure(state)
            return self.backoff(state.attempt_number - 1) if failure.backoff else 0.0

        def before_sleep(state: tenacity.RetryCallState) -> None:
            if on_retry is not None:
                delay = state.next_action.sleep if state.next_action is not None else 0.0
                on_retry(_failure(state), float(delay))

        def out_of_time(state: tenacity.RetryCallState) -> bool:
            return deadline is not None and state.upcoming_sleep >= deadline.remaining()

        def give_up(state: tenacity.RetryCallState) -> T:
            problem = _failure(state).problem
            if deadline is not None and state.attempt_number <= self.max_retries:
                raise OutOfTime(problem, state.attempt_number, deadline)
            raise GaveUp(problem, state.attempt_number)

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_retries + 1) | out_of_time,
            wait=wait,
            retry=tenacity.retry_if_exception_type(TransientFailure),
            sleep=lambda seconds: sleep(seconds) if seconds > 0 else None,
            before_sleep=before_sleep,
            retry_error_callback=give_up,
        )
        return retrying(once)


def _failure(state: tenacity.RetryCallState) -> TransientFailure:
    """The `TransientFailure` of the attempt that just ended (the only one tenacity retries)."""
    outcome = state.outcome
    failure = outcome.exception() if outcome is not None else None
    if not isinstance(failure, TransientFailure):  # pragma: no cover - excluded by `retry=`
        raise RuntimeError("retry state without a TransientFailure")
    return failure
