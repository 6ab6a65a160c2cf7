"""The one progress protocol of every stage: `progress(stage, done, total)`.

A long-running library function takes `progress: Progress | None` and calls it with a short
stage label (`"fetch bars"`, `"walk-forward folds"`, `"series features"`), the units done so
far and the units in all; `total` may grow while a stage runs. The caller decides what to
draw (the CLI draws rich progress bars on stderr); the library never draws or prints.
Callbacks may be called from worker threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

Progress = Callable[[str, int, int], None]


def no_progress(stage: str, done: int, total: int) -> None:
    """A `Progress` that ignores every report."""


class Steps:
    """Thread-safe counting of one stage's units: `step()` reports done + 1 of `total`."""

    def __init__(self, progress: Progress | None, stage: str, total: int) -> None:
        self._progress = progress or no_progress
        self._stage = stage
        self._total = total
        self._done = 0
        self._lock = threading.Lock()
        self._progress(stage, 0, total)

    def step(self, count: int = 1) -> None:
        with self._lock:
            self._done += count
            done = self._done
        self._progress(self._stage, done, self._total)
