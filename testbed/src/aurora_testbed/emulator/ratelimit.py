"""Per-key fixed one-minute request windows, as Alpaca's plans count them.

Windows are aligned to the epoch minute of the injected clock: a request at 12:00:37 counts
in the window [12:00:00, 12:01:00) and `X-RateLimit-Reset` is 12:01:00 in epoch seconds.
Every request counts, including rejected ones; a request beyond the limit is refused (429)
with remaining 0.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RateState:
    """The values of the X-RateLimit-* headers for one request, and whether it may proceed."""

    limit: int
    remaining: int
    reset_epoch: int
    allowed: bool

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_epoch),
        }


class RateLimiter:
    """Counts requests per key in fixed one-minute windows of `clock` (thread-safe)."""

    def __init__(self, limit_per_minute: int, clock: Callable[[], dt.datetime]) -> None:
        if limit_per_minute < 1:
            raise ValueError("rate limit must be at least 1 request per minute")
        self.limit = limit_per_minute
        self._clock = clock
        self._windows: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> RateState:
        """Count one request for `key` and return the resulting state."""
        window = int(self._clock().timestamp()) // 60
        with self._lock:
            start, used = self._windows.get(key, (window, 0))
            if start != window:
                start, used = window, 0
            used += 1
            self._windows[key] = (start, used)
        reset = (window + 1) * 60
        return RateState(self.limit, max(self.limit - used, 0), reset, used <= self.limit)

    def exhausted(self, key: str) -> RateState:
        """The state reported by an injected 429: remaining 0 in the current window."""
        window = int(self._clock().timestamp()) // 60
        return RateState(self.limit, 0, (window + 1) * 60, False)
