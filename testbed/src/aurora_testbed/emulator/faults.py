"""Scriptable, deterministic fault injection for the emulator.

Requests are numbered 1, 2, 3, ... in arrival order (every request the server reads counts,
whatever its path or outcome; `LoggedRequest.number` shows the number). A rule fires on
requests whose number is >= `at_request` (default: any) and whose path matches the regular
expression `path` (re.search; default: any), until it has fired `count` times. Rules of
different kinds can fire on the same request: the server first sleeps (slow), then drops the
connection (drop), then answers with an injected status (rate-limit burst or error).

Data modes are switches rather than per-request rules: a bar revision (restatement) applies to
every request numbered >= `from_request`; `full_page_token` makes a page filled exactly to
`limit` carry a token followed by an empty last page; `lenient_bars` drops `n`/`vw` from
every bar and adds unknown keys.

All methods are thread-safe: the test thread may change the plan while the server runs.
Builder methods return the plan, so calls chain.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from dataclasses import dataclass, field
from typing import Literal

DropMode = Literal["no_response", "partial_body"]
BodyKind = Literal["json", "html"]
ERROR_STATUSES = (500, 502, 503, 504)


@dataclass(frozen=True)
class FaultAction:
    """One injected behaviour for one request."""

    kind: Literal["rate_limit", "error", "slow", "drop"]
    status: int = 0
    body: BodyKind = "json"
    seconds: float = 0.0
    drop_mode: DropMode = "no_response"
    retry_after: int | None = None

    @property
    def label(self) -> str:
        if self.kind == "slow":
            return f"slow:{self.seconds:g}s"
        if self.kind == "drop":
            return f"drop:{self.drop_mode}"
        return f"{self.kind}:{self.status}"


@dataclass(frozen=True)
class Revision:
    """From request `from_request` on, the raw close of (symbol, day) is multiplied by factor."""

    symbol: str
    day: dt.date
    factor: float
    from_request: int


@dataclass
class _Rule:
    action: FaultAction
    at_request: int | None
    path: re.Pattern[str] | None
    remaining: int

    def matches(self, number: int, path: str) -> bool:
        if self.remaining <= 0:
            return False
        if self.at_request is not None and number < self.at_request:
            return False
        return self.path is None or self.path.search(path) is not None


@dataclass
class FaultPlan:
    """A mutable, thread-safe script of faults (see the module docstring)."""

    _rules: list[_Rule] = field(default_factory=list)
    _revisions: list[Revision] = field(default_factory=list)
    _full_page_token: bool = False
    _lenient_bars: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _add(self, action: FaultAction, count: int, at_request: int | None,
             path: str | None) -> FaultPlan:
        if count < 1:
            raise ValueError("count must be >= 1")
        if at_request is not None and at_request < 1:
            raise ValueError("at_request is 1-based")
        rule = _Rule(action, at_request, re.compile(path) if path else None, count)
        with self._lock:
            self._rules.append(rule)
        return self

    def rate_limit_burst(self, count: int, *, at_request: int | None = None,
                         path: str | None = None, retry_after: int | None = None) -> FaultPlan:
        """`count` consecutive matching requests get 429 (X-RateLimit-Remaining: 0)."""
        return self._add(FaultAction("rate_limit", 429, retry_after=retry_after),
                         count, at_request, path)

    def error(self, status: int, *, body: BodyKind = "json", count: int = 1,
              at_request: int | None = None, path: str | None = None) -> FaultPlan:
        """Answer with a 5xx status and a JSON `{"message"}` or an HTML (proxy-style) body."""
        if status not in ERROR_STATUSES:
            raise ValueError(f"error status must be one of {ERROR_STATUSES}")
        if body not in ("json", "html"):
            raise ValueError("body must be 'json' or 'html'")
        return self._add(FaultAction("error", status, body=body), count, at_request, path)

    def slow(self, seconds: float, *, count: int = 1, at_request: int | None = None,
             path: str | None = None) -> FaultPlan:
        """Sleep `seconds` before handling the request (for client timeout tests)."""
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        return self._add(FaultAction("slow", seconds=seconds), count, at_request, path)

    def drop_connection(self, *, mode: DropMode = "no_response", count: int = 1,
                        at_request: int | None = None, path: str | None = None) -> FaultPlan:
        """Close the socket with no response, or after the headers and half the body."""
        if mode not in ("no_response", "partial_body"):
            raise ValueError("mode must be 'no_response' or 'partial_body'")
        return self._add(FaultAction("drop", drop_mode=mode), count, at_request, path)

    def revise_bar(self, symbol: str, day: dt.date, factor: float, *,
                   from_request: int) -> FaultPlan:
        """Restate the raw close of (symbol, day) by `factor` from request `from_request` on.

        High and low widen if needed so the bar stays consistent (low <= close <= high).
        """
        if factor <= 0:
            raise ValueError("factor must be > 0")
        with self._lock:
            self._revisions.append(Revision(symbol.upper(), day, factor, from_request))
        return self

    def set_full_page_token(self, enabled: bool = True) -> FaultPlan:
        """Pages filled exactly to `limit` return a token even when nothing is left."""
        with self._lock:
            self._full_page_token = enabled
        return self

    def set_lenient_bars(self, enabled: bool = True) -> FaultPlan:
        """Bars lose `n` and `vw` and gain unknown keys (lenient-parser tests)."""
        with self._lock:
            self._lenient_bars = enabled
        return self

    def clear(self) -> FaultPlan:
        """Remove every rule, revision and switch."""
        with self._lock:
            self._rules.clear()
            self._revisions.clear()
            self._full_page_token = False
            self._lenient_bars = False
        return self

    @property
    def full_page_token(self) -> bool:
        with self._lock:
            return self._full_page_token

    @property
    def lenient_bars(self) -> bool:
        with self._lock:
            return self._lenient_bars

    def take(self, number: int, path: str) -> list[FaultAction]:
        """The actions for request `number` on `path`, consuming one firing of each rule."""
        fired: list[FaultAction] = []
        kinds: set[str] = set()
        with self._lock:
            for rule in self._rules:
                kind = "status" if rule.action.kind in ("rate_limit", "error") else rule.action.kind
                if kind not in kinds and rule.matches(number, path):
                    rule.remaining -= 1
                    kinds.add(kind)
                    fired.append(rule.action)
        return fired

    def revisions_for(self, number: int) -> tuple[Revision, ...]:
        """Revisions in effect for request `number`, in the order they were added."""
        with self._lock:
            return tuple(r for r in self._revisions if number >= r.from_request)

    def pending(self) -> int:
        """How many rule firings are still outstanding (0 when the script is used up)."""
        with self._lock:
            return sum(r.remaining for r in self._rules)
