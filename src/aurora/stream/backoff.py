"""Reconnection delays: capped exponential backoff with full jitter.

alpaca-py reconnects in a tight loop, and its users met 429 storms (alpaca-py #248, #740).
Here the n-th consecutive failed attempt waits a uniform random time in
[0, min(cap, base x 2^n)] ("full jitter": clients that failed together do not retry
together), and a connection that stayed healthy for `healthy_seconds` starts the count
again. A 406 (another connection holds the plan's slot) waits at least `slot_wait`.
The random source is injected, so tests and the note's numbers are reproducible.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays in seconds. `next_delay()` after each failure; `connected(seconds)` when a
    connection ends after having been up that long."""

    base: float = 0.5
    cap: float = 30.0
    healthy_seconds: float = 60.0
    slot_wait: float = 10.0
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.base <= self.cap:
            raise ValueError(f"backoff needs 0 < base <= cap, got {self.base} and {self.cap}")

    def ceiling(self) -> float:
        """The largest delay the next failure can draw."""
        return min(self.cap, self.base * 2.0 ** self.failures)

    def next_delay(self, *, slot_taken: bool = False) -> float:
        """The wait before the next attempt; counts one more consecutive failure."""
        delay = self.rng.uniform(0.0, self.ceiling())
        self.failures += 1
        return max(delay, self.slot_wait) if slot_taken else delay

    def connected(self, seconds_up: float) -> None:
        """A connection ended after `seconds_up`: a healthy one resets the count."""
        if seconds_up >= self.healthy_seconds:
            self.failures = 0
