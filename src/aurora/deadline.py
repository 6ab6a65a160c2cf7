"""Deadlines: one absolute instant that every wait of a piece of work must respect.

Contract:
- `Deadline.after(seconds, what, clock=time.monotonic)` passes `seconds` after it is made.
  `at` is an instant on `clock` (monotonic seconds by default; tests inject a fake clock).
  `what` names the work in messages: "request group", "fetch".
- `remaining()` is the seconds left (zero or negative once passed); `expired()` says whether
  it passed; `message()` is the one-line reason, "fetch exceeded its 1800 s deadline".
- `Deadline.earliest(*deadlines)` is the one that passes first; None entries are ignored
  and None comes back when nothing is left.
- A Deadline is immutable and may be shared between threads.
- `DeadlineExceeded` is the `FetchError` the fetch client raises when one passes; its
  `deadline` attribute says which (compare with `is` to tell a request group's own deadline
  from one the caller passed in).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aurora.errors import FetchError


@dataclass(frozen=True)
class Deadline:
    """An instant `at` on `clock` by which `what` must be done (`seconds` after its start)."""

    at: float
    seconds: float
    what: str
    clock: Callable[[], float] = field(default=time.monotonic, compare=False, repr=False)

    @classmethod
    def after(cls, seconds: float, what: str, *,
              clock: Callable[[], float] = time.monotonic) -> Deadline:
        """A deadline `seconds` (> 0, finite) from now on `clock`; ValueError otherwise."""
        if not (seconds > 0 and math.isfinite(seconds)):
            raise ValueError(f"a deadline needs a positive, finite number of seconds, "
                             f"not {seconds!r}")
        return cls(clock() + seconds, seconds, what, clock)

    @staticmethod
    def earliest(*deadlines: Deadline | None) -> Deadline | None:
        """The deadline with the least time remaining, or None when all are None."""
        live = [d for d in deadlines if d is not None]
        return min(live, key=lambda d: d.remaining()) if live else None

    def remaining(self) -> float:
        """Seconds left before the deadline (zero or negative once it passed)."""
        return self.at - self.clock()

    def expired(self) -> bool:
        """True once the deadline has passed."""
        return self.remaining() <= 0

    def message(self) -> str:
        """`request group exceeded its 600 s deadline`."""
        return f"{self.what} exceeded its {self.seconds:g} s deadline"


class DeadlineExceeded(FetchError):
    """Work stopped because `deadline` passed (or a wait would have ended past it)."""

    def __init__(self, message: str, deadline: Deadline) -> None:
        super().__init__(message)
        self.deadline = deadline
