"""How a request to Alpaca ends when it does not succeed (refused, retries exhausted, rate
limit waited out) and the counters of a client's traffic: shared by the market-data client
(`aurora.fetch.client`), the paging and the fetch stage's report."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from aurora.errors import FetchError


class RequestRejected(FetchError):
    """The API refused the request in a way retrying cannot fix (400, 404, 422, ...)."""


class RetriesExhausted(FetchError):
    """A request still failed after every allowed retry. `rate_limited` is True when its
    last attempt was refused with HTTP 429 (the server was still rate limiting it)."""

    def __init__(self, message: str, *, rate_limited: bool = False) -> None:
        super().__init__(message)
        self.rate_limited = rate_limited


class RateLimitWaitExceeded(FetchError):
    """One request would wait on the rate limit longer than it may in all."""


def refused_by_rate_limit(exc: BaseException) -> bool:
    """True when `exc` ended a request because the server kept answering HTTP 429:
    `RateLimitWaitExceeded` (its rate-limit waiting budget is spent), or `RetriesExhausted`
    whose last attempt was a 429 (its retries are spent)."""
    return isinstance(exc, RateLimitWaitExceeded) or (
        isinstance(exc, RetriesExhausted) and exc.rate_limited)


@dataclass
class ClientStats:
    """Counters of one client's traffic (thread-safe increments through `add`)."""

    requests: int = 0
    successful: int = 0
    retries: int = 0
    rate_limited: int = 0
    backoff_seconds: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: float) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def count_status(self, label: str) -> None:
        with self._lock:
            self.statuses[label] = self.statuses.get(label, 0) + 1

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests,
                "successful": self.successful,
                "retries": self.retries,
                "rate_limited": self.rate_limited,
                "backoff_seconds": round(self.backoff_seconds, 3),
                "statuses": dict(sorted(self.statuses.items())),
            }
