"""Progress bars on stderr for the library's `progress(stage, done, total)` reports.

The CLI owns the drawing: `progress_bars(enabled)` yields the callback a library function
takes (or None when disabled). A bar per stage label appears at its first report, so an
early one-line error is not preceded by an empty bar; bars are cleared when the command
ends and the summary lines follow.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from aurora.progress import Progress as ProgressCallback


@contextmanager
def progress_bars(enabled: bool = True) -> Iterator[ProgressCallback | None]:
    """A `Progress` callback drawing rich bars on stderr while the block runs."""
    if not enabled:
        yield None
        return
    bars = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=Console(stderr=True), transient=True)
    tasks: dict[str, TaskID] = {}
    lock = threading.Lock()

    def report(stage: str, done: int, total: int) -> None:
        with lock:
            if not tasks:
                bars.start()
            if stage not in tasks:
                tasks[stage] = bars.add_task(stage, total=max(total, 1))
            bars.update(tasks[stage], completed=done, total=max(total, 1))

    try:
        yield report
    finally:
        if tasks:
            bars.stop()
