"""Client-side rate limiter: stay under the plan's requests-per-minute by our own pace.

Contract:
- Sliding window: at most `limit_per_minute` requests start within any `60 s + margin`
  window (the margin absorbs clock and latency differences with the server's window).
- Server hints: after each response, `observe(headers)` reads `X-RateLimit-Remaining` and
  `X-RateLimit-Reset` (UNIX epoch seconds); when nothing remains, the next request waits
  until the reset instant. A 429 calls `block_until_reset` / `block_for` and the wait happens
  in the next `acquire`, so every rate-limit wait is counted in `waited_seconds`.
- Persistence: with `state_path`, the recent request instants and any pending block are
  saved atomically after every request and loaded on start, so runs in quick succession
  share one budget. A missing or unreadable state file starts an empty budget.
- Time: `clock` returns wall-clock epoch seconds (it must be comparable across processes
  and with the server's reset header); `sleep` waits. Both are injectable for tests; the
  limiter never loops on the clock, so a fake `sleep` that does not advance time is safe.
- Thread-safe: concurrent callers are admitted one at a time.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path

from aurora.atomic import atomic_write_json

WINDOW_SECONDS = 60.0
_MAX_BLOCK_SECONDS = 300.0  # never trust a reset header further out than this
_RESET_SLACK = 0.05


def _header(headers: Mapping[str, str], name: str) -> float | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        return None


class RateLimiter:
    """Paces requests under `limit_per_minute`; see the module docstring."""

    def __init__(
        self,
        limit_per_minute: int,
        *,
        margin_seconds: float = 1.0,
        window_seconds: float = WINDOW_SECONDS,
        state_path: Path | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if limit_per_minute < 1:
            raise ValueError("limit_per_minute must be at least 1")
        self.limit = limit_per_minute
        self.window = window_seconds + margin_seconds
        self.state_path = state_path
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._starts: deque[float] = deque()
        self._blocked_until = 0.0
        self.waited_seconds = 0.0
        self.waits = 0
        self._load()

    # -- public --------------------------------------------------------------------------
    def acquire(self) -> float:
        """Wait until one more request fits the budget, record it; return seconds waited."""
        with self._lock:
            now = self._clock()
            self._prune(now)
            target = max(now, self._blocked_until)
            if len(self._starts) >= self.limit:
                target = max(target, self._starts[len(self._starts) - self.limit] + self.window)
            wait = target - now
            if wait > 0:
                self._sleep(wait)
                self.waited_seconds += wait
                self.waits += 1
            self._starts.append(max(self._clock(), target))
            self._save()
            return max(wait, 0.0)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Read the server's remaining budget; block until its reset when it is exhausted."""
        remaining = _header(headers, "x-ratelimit-remaining")
        if remaining is not None and remaining <= 0:
            self.block_until_reset(headers)

    def block_until_reset(self, headers: Mapping[str, str]) -> bool:
        """Block the next request until `X-RateLimit-Reset`; False when the header is unusable."""
        reset = _header(headers, "x-ratelimit-reset")
        if reset is None:
            return False
        now = self._clock()
        if reset < 1e9:  # a relative number of seconds rather than an epoch instant
            reset = now + reset
        if reset - now > _MAX_BLOCK_SECONDS:
            return False
        self._block(max(reset, now) + _RESET_SLACK)
        return True

    def block_for(self, seconds: float) -> None:
        """Block the next request for `seconds` (a 429 without a usable reset header)."""
        self._block(self._clock() + max(seconds, 0.0))

    def in_window(self) -> int:
        """How many recorded request starts fall inside the current window."""
        with self._lock:
            self._prune(self._clock())
            return len(self._starts)

    # -- internals -----------------------------------------------------------------------
    def _block(self, until: float) -> None:
        with self._lock:
            self._blocked_until = max(self._blocked_until, until)
            self._save()

    def _prune(self, now: float) -> None:
        while self._starts and self._starts[0] <= now - self.window:
            self._starts.popleft()

    def _load(self) -> None:
        if self.state_path is None or not self.state_path.exists():
            return
        try:
            state = json.loads(self.state_path.read_text())
            starts = sorted(float(t) for t in state.get("request_starts", []))
            blocked = float(state.get("blocked_until", 0.0))
        except (OSError, ValueError, TypeError, AttributeError):
            return  # a damaged state file only costs us the memory of recent requests
        self._starts = deque(starts)
        self._blocked_until = blocked
        self._prune(self._clock())

    def _save(self) -> None:
        if self.state_path is None:
            return
        atomic_write_json(
            self.state_path,
            {
                "limit_per_minute": self.limit,
                "window_seconds": self.window,
                "request_starts": [round(t, 6) for t in self._starts],
                "blocked_until": round(self._blocked_until, 6),
            },
        )
