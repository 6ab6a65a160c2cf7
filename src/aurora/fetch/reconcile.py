"""Rolling reconciliation: each fetch re-reads the whole history of one slice of symbols.

The overlap check (`aurora.fetch.incremental`) only sees corrections inside the last
`overlap_sessions` sessions. Reconciliation catches the older ones at a bounded cost.

Contract:
- `next_slice(candidates, after, cycle)`: with `cycle` = `fetch.reconcile_cycle_runs`
  (0 turns reconciliation off), the next ceil(len(candidates) / cycle) candidates in
  sorted order after the symbol `after`, wrapping around. Over `cycle` consecutive fetches
  of an unchanged universe every candidate is re-read once.
- The cursor (the last symbol re-read) lives in `data/state/fetch-reconcile.json`, written
  atomically only after a fetch succeeded (published or found nothing to change), so a
  failed fetch re-reads the same slice next time. A missing or unreadable cursor starts
  from the first symbol.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from pathlib import Path

from aurora.atomic import atomic_write_json

CURSOR_FILE = "fetch-reconcile.json"


def next_slice(candidates: Sequence[str], after: str | None, cycle: int) -> list[str]:
    """The symbols to re-read in full this run (see the module docstring)."""
    if cycle <= 0 or not candidates:
        return []
    ordered = sorted(set(candidates))
    size = math.ceil(len(ordered) / cycle)
    first = 0 if after is None else next((i for i, s in enumerate(ordered) if s > after), 0)
    return [ordered[(first + i) % len(ordered)] for i in range(size)]


def read_cursor(state_dir: Path) -> str | None:
    """The last symbol re-read by the previous successful fetch, or None."""
    try:
        data = json.loads((state_dir / CURSOR_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    after = data.get("after") if isinstance(data, dict) else None
    return after if isinstance(after, str) and after else None


def write_cursor(state_dir: Path, checked: Sequence[str], cycle: int, today: dt.date) -> None:
    """Remember where the next slice starts (after the last symbol of `checked`)."""
    if checked:
        atomic_write_json(state_dir / CURSOR_FILE, {
            "after": checked[-1], "cycle_runs": cycle, "checked": list(checked),
            "day": today.isoformat()})
