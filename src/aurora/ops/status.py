"""`aurora status` as data: recent runs, data freshness and open alerts (read-only).

A run-history database that cannot be read does not stop the status: `history_error` says
what is wrong (the file and the SQLite error), runs and alerts are then empty, and the rest
(freshness, versions, a run in progress) is reported as usual.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from typing import Any

from aurora.config import AuroraConfig
from aurora.errors import AuroraError, StoreError
from aurora.ops.freshness import Freshness, check_freshness
from aurora.ops.history import MOVE_ASIDE, AlertRecord, History, RunRecord
from aurora.ops.runner import RUNNING
from aurora.store import Store


@dataclass
class StatusReport:
    runs: list[RunRecord]
    freshness: Freshness | None
    freshness_error: str | None
    alerts: list[AlertRecord]
    latest_version: str | None
    in_progress: dict[str, Any] | None = None  # state/running.json; "alive" says if its pid is
    # Published versions newer than `latest`: a run killed between publishing its version and
    # moving `latest` (its outputs are complete but not current), or a rollback
    newer_than_latest: list[str] = field(default_factory=list)
    history_error: str | None = None  # aurora.db cannot be read: the one-line reason

    def to_dict(self) -> dict[str, Any]:
        return {
            "latest_version": self.latest_version,
            "runs": [r.to_dict() for r in self.runs],
            "freshness": self.freshness.to_dict() if self.freshness else None,
            "freshness_error": self.freshness_error,
            "open_alerts": [a.__dict__ for a in self.alerts],
            "in_progress": self.in_progress,
            "newer_than_latest": self.newer_than_latest,
            "history_error": self.history_error,
        }

    def history_line(self) -> str | None:
        """What to tell a person when the run history cannot be read (None when it can)."""
        if self.history_error is None:
            return None
        return f"run history unavailable: {self.history_error}; {MOVE_ASIDE}"


def collect_status(store: Store, config: AuroraConfig, *, limit: int = 10,
                   now: dt.datetime | None = None) -> StatusReport:
    """Gather the status; reads only (a missing database means no runs yet)."""
    history = History(store.root)
    freshness, problem, latest = None, None, None
    try:
        latest = store.current_version()
        freshness = check_freshness(store, config, now)
    except AuroraError as exc:
        problem = str(exc)
    newer = [v for v in store.versions() if latest is not None and v > latest]
    runs: list[RunRecord] = []
    alerts: list[AlertRecord] = []
    history_error = None
    try:
        runs, alerts = history.recent_runs(limit), history.alerts("open")
    except StoreError as exc:
        history_error = str(exc)
    return StatusReport(runs, freshness, problem, alerts, latest, _in_progress(store), newer,
                        history_error)


def _in_progress(store: Store) -> dict[str, Any] | None:
    """The stage a run reported last (state/running.json), and whether its process still
    lives: a dead one was killed inside that stage. None when no run left a report."""
    try:
        state = json.loads((store.state_dir / RUNNING).read_text())
        pid = int(state["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    alive = pid > 0
    if alive:
        try:
            os.kill(pid, 0)  # signal 0: only asks whether the process exists
        except OSError:
            alive = False
    return {**state, "alive": alive}
