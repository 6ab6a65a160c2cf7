"""Retry policy for market-data requests: which outcomes retry, and how long to wait.

Contract:
- 429 waits until `X-RateLimit-Reset` (epoch seconds); without a usable header it backs off
  exponentially. The wait itself is done by the rate limiter, so it counts as rate-limit time.
- 408, 5xx, timeouts, dropped connections and bodies that are not the expected JSON retry with
  exponential backoff and full jitter: delay = uniform(0, min(max, base * 2**attempt)), never
  below `base / 2` so a burst of failures cannot turn into a hot loop.
- 400, 401, 403, 404, 422 and every other 4xx never retry.
- At most `max_retries` retries per request (so `max_retries + 1` attempts).

The random source is injected (`rng`) so tests are deterministic.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import Enum


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


@dataclass
class RetryPolicy:
    """Bounded exponential backoff with jitter.

    `base_seconds` and `max_seconds` are the backoff scale and cap; `max_retries` bounds the
    retries of one request (not of a whole run).
    """

    max_retries: int = 6
    base_seconds: float = 0.5
    max_seconds: float = 60.0
    rng: random.Random = field(default_factory=random.Random)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt + 1` (attempt counts from 0)."""
        ceiling = min(self.max_seconds, self.base_seconds * (2 ** min(attempt, 30)))
        floor = min(ceiling, self.base_seconds / 2)
        return floor + self.rng.random() * (ceiling - floor)

    def exhausted(self, retries_done: int) -> bool:
        """True when no retry is left after `retries_done` retries."""
        return retries_done >= self.max_retries
