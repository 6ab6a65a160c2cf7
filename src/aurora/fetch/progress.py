"""Progress display for a fetch: one bar over batches, a counter of pages and bars (stderr).

`FetchProgress(enabled=False)` does nothing, so library callers and tests stay quiet.
"""

from __future__ import annotations

import threading

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class FetchProgress:
    """Context manager: `start(total_batches)`, `page(n_bars)`, `batch_done()`."""

    def __init__(self, enabled: bool) -> None:
        self._progress: Progress | None = None
        self._task = None
        self._pages = 0
        self._bars = 0
        self._lock = threading.Lock()
        if enabled:
            self._progress = Progress(
                TextColumn("[bold]fetch[/bold] {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("batches · {task.fields[pages]} pages · {task.fields[bars]} bars"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=False,
            )

    def __enter__(self) -> FetchProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def start(self, description: str, total_batches: int) -> None:
        if self._progress is None:
            return
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._task = self._progress.add_task(
            description, total=total_batches, pages=self._pages, bars=self._bars
        )

    def page(self, bars: int) -> None:
        with self._lock:
            self._pages += 1
            self._bars += bars
            if self._progress is not None and self._task is not None:
                self._progress.update(self._task, pages=self._pages, bars=f"{self._bars:,}")

    def batch_done(self) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task)
