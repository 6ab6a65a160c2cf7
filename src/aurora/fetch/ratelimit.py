"""Client-side rate limiter: stay under the plan's requests-per-minute by our own pace.

Contract:
- Sliding window: at most `limit_per_minute` requests start within any `60 s + margin`
  window (the margin absorbs clock and latency differences with the server's window).
- Server hints: after each response, `observe(headers)` reads `X-RateLimit-Remaining` and
  `X-RateLimit-Reset` (UNIX epoch seconds); when nothing remains, the next request waits
  until the reset instant. A 429 calls `block_until_reset`, else `block_after` (its
  `Retry-After`), else `block_for` (a backoff), and the wait happens
  in the next `acquire`, so every rate-limit wait is counted in `waited_seconds`. A reset
  more than `MAX_BLOCK_SECONDS` (300) away is not trusted, and `block_for` never blocks
  longer than that.
- Waits are bounded and said: one `acquire` never sleeps more than `max_single_wait`
  (the larger of the window and `MAX_BLOCK_SECONDS`), logs a warning naming the cause
  ("waiting 42 s for the rate limit (HTTP 429, until X-RateLimit-Reset)") when it sleeps
  `WARN_WAIT_SECONDS` (5) or more, and with `max_wait` refuses, by raising `WaitRefused`
  without sleeping or recording anything, a wait longer than the caller can afford.
- State from the future is distrusted: request instants more than one window after now
  and a block more than `MAX_BLOCK_SECONDS` after now (a clock stepped back, or a state file
  copied from another host) are dropped with a warning, when the state file is loaded and
  before every request.
- Persistence: with `state_path`, the recent request instants and any pending block are
  saved atomically after every request and loaded on start, so runs in quick succession
  share one budget. A missing or unreadable state file starts an empty budget.
- Time: `clock` returns wall-clock epoch seconds (it must be comparable across processes
  and with the server's reset header); `sleep` waits. Both are injectable for tests; the
  limiter never loops on the clock, so a fake `sleep` that does not advance time is safe.
- Thread-safe: concurrent callers are admitted one at a time.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path

from aurora.atomic import atomic_write_json

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60.0
MAX_BLOCK_SECONDS = 300.0  # never trust a reset header further out than this
WARN_WAIT_SECONDS = 5.0
_RESET_SLACK = 0.05


def _header(headers: Mapping[str, str], name: str) -> float | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        return None


def _utc(epoch: float) -> str:
    try:
        return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return f"epoch {epoch:.0f}"


class WaitRefused(Exception):
    """`acquire(max_wait=...)` would have to wait `wait` seconds (> `allowed`) for `reason`.

    Nothing was slept and nothing recorded; the caller decides what failing means.
    """

    def __init__(self, wait: float, allowed: float, reason: str) -> None:
        super().__init__(f"waiting {wait:.0f} s for the rate limit ({reason}) exceeds the "
                         f"{max(allowed, 0.0):.0f} s allowed")
        self.wait = wait
        self.allowed = allowed
        self.reason = reason


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
        self.max_single_wait = max(self.window, MAX_BLOCK_SECONDS)
        self.state_path = state_path
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._starts: deque[float] = deque()
        self._blocked_until = 0.0
        self._block_reason = ""
        self.waited_seconds = 0.0
        self.waits = 0
        self._load()

    # -- public --------------------------------------------------------------------------
    def acquire(self, max_wait: float | None = None, *, context: str = "") -> float:
        """Wait until one more request fits the budget, record it; return seconds waited.

        `max_wait`: the longest wait the caller accepts; a longer one raises `WaitRefused`
        at once (nothing slept or recorded). `context` is appended to the warning logged
        for a wait of `WARN_WAIT_SECONDS` or more (e.g. " before GET /v2/stocks/bars ...").
        """
        with self._lock:
            now = self._clock()
            self._distrust_future(now, "in memory")
            self._prune(now)
            wait, reason = self._needed_wait(now)
            if wait > self.max_single_wait:  # a backstop: _distrust_future bounds it already
                log.warning("rate-limit wait of %.0f s (%s) capped at %.0f s",
                            wait, reason, self.max_single_wait)
                wait = self.max_single_wait
            if max_wait is not None and wait > max_wait:
                raise WaitRefused(wait, max_wait, reason)
            if wait > 0:
                if wait >= WARN_WAIT_SECONDS:
                    log.warning("waiting %.0f s for the rate limit (%s)%s", wait, reason,
                                context)
                self._sleep(wait)
                self.waited_seconds += wait
                self.waits += 1
            self._starts.append(max(self._clock(), now + max(wait, 0.0)))
            self._save()
            return max(wait, 0.0)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Read the server's remaining budget; block until its reset when it is exhausted."""
        remaining = _header(headers, "x-ratelimit-remaining")
        if remaining is not None and remaining <= 0:
            self.block_until_reset(headers, why="X-RateLimit-Remaining: 0, until "
                                                "X-RateLimit-Reset")

    def block_until_reset(self, headers: Mapping[str, str], *,
                          why: str = "until X-RateLimit-Reset") -> bool:
        """Block the next request until `X-RateLimit-Reset`; False when the header is unusable
        (missing, not a number, or more than `MAX_BLOCK_SECONDS` away)."""
        reset = _header(headers, "x-ratelimit-reset")
        if reset is None:
            return False
        now = self._clock()
        if reset < 1e9:  # a relative number of seconds rather than an epoch instant
            reset = now + reset
        if reset - now > MAX_BLOCK_SECONDS:
            return False
        self._block(max(reset, now) + _RESET_SLACK, why)
        return True

    def block_after(self, headers: Mapping[str, str], *,
                    why: str = "HTTP 429, for its Retry-After") -> bool:
        """Block the next request for a 429's `Retry-After` (seconds, or an HTTP date); False
        when it is unusable (missing, unparsable, not in the future or more than
        `MAX_BLOCK_SECONDS` away). Alpaca documents no Retry-After, but a server that sends
        one means it."""
        raw = headers.get("retry-after")
        if raw is None:
            return False
        now = self._clock()
        try:
            seconds = float(raw)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(raw)
            except (TypeError, ValueError):
                return False
            if when.tzinfo is None:
                return False
            seconds = when.timestamp() - now
        if not 0 < seconds <= MAX_BLOCK_SECONDS:  # 0 would retry at once: back off instead
            return False
        self._block(now + seconds, why)
        return True

    def block_for(self, seconds: float, *, why: str = "backing off") -> None:
        """Block the next request for `seconds`, at most `MAX_BLOCK_SECONDS` (a 429 without
        a usable reset header)."""
        self._block(self._clock() + min(max(seconds, 0.0), MAX_BLOCK_SECONDS), why)

    def in_window(self) -> int:
        """How many recorded request starts fall inside the current window."""
        with self._lock:
            now = self._clock()
            self._distrust_future(now, "in memory")
            self._prune(now)
            return len(self._starts)

    # -- internals -----------------------------------------------------------------------
    def _needed_wait(self, now: float) -> tuple[float, str]:
        """(seconds to wait before the next start, why), from the block and the window."""
        wait, reason = 0.0, ""
        if self._blocked_until > now:
            wait, reason = self._blocked_until - now, self._block_reason or "blocked"
        if len(self._starts) >= self.limit:
            slot = self._starts[len(self._starts) - self.limit] + self.window - now
            if slot > wait:
                wait = slot
                reason = f"{self.limit} requests in {self.window:g} s"
        return wait, reason

    def _block(self, until: float, why: str) -> None:
        with self._lock:
            if until >= self._blocked_until:  # the latest cause of the longest block
                self._blocked_until = until
                self._block_reason = why
            self._save()

    def _prune(self, now: float) -> None:
        while self._starts and self._starts[0] <= now - self.window:
            self._starts.popleft()

    def _distrust_future(self, now: float, where: str) -> None:
        """Drop request instants beyond now + window and a block beyond now +
        MAX_BLOCK_SECONDS, with a warning: this limiter never records such values, so
        they come from a clock stepped back or from another host's state."""
        late = [t for t in self._starts if t > now + self.window]
        blocked = self._blocked_until > now + MAX_BLOCK_SECONDS + _RESET_SLACK
        if not late and not blocked:
            return
        parts = []
        if late:
            parts.append(f"{len(late)} request time(s) up to {_utc(max(late))}")
            self._starts = deque(t for t in self._starts if t <= now + self.window)
        if blocked:
            parts.append(f"a block until {_utc(self._blocked_until)}")
            self._blocked_until, self._block_reason = 0.0, ""
        log.warning("ignored rate-limit state from the future (%s): %s, while this host's "
                    "clock says %s; was the clock stepped back, or the state copied from "
                    "another host?", where, " and ".join(parts), _utc(now))

    def _load(self) -> None:
        if self.state_path is None or not self.state_path.exists():
            return
        try:
            state = json.loads(self.state_path.read_text())
            starts = sorted(float(t) for t in state.get("request_starts", []))
            blocked = float(state.get("blocked_until", 0.0))
            reason = str(state.get("blocked_reason") or "")
        except (OSError, ValueError, TypeError, AttributeError):
            return  # a damaged state file only costs us the memory of recent requests
        self._starts = deque(starts)
        self._blocked_until = blocked
        self._block_reason = reason
        now = self._clock()
        self._distrust_future(now, str(self.state_path))
        self._prune(now)

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
                "blocked_reason": self._block_reason,
            },
        )
