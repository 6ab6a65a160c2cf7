"""Data freshness: the latest stored session against the NYSE calendar and the deadline.

The deadline (`config.ops.deadline`, default 16:00 `America/Chicago`) is the wall-clock time
on a session day by which that session's bars must be in the store. At instant `now`:
- `expected_session` is the last session whose close has passed (`last_completed_session`);
- `due_session` is the last session whose deadline has passed;
- the data is `stale` when the latest stored session is older than `due_session`; a store
  that never held prices is not stale (there is nothing to be late: the failure that left
  it empty is what gets reported);
- `sessions_behind` counts the sessions after the latest stored one up to `expected_session`
  (0 when nothing is stored: see `latest_session is None`);
- `in_by_deadline` tells whether the first version holding `due_session` was published at or
  before that session's deadline (None when no price data exists at all).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from aurora import calendar
from aurora.config import AuroraConfig
from aurora.errors import StoreError
from aurora.store import FileEntry, Store
from aurora.store.files import PRICES

_DATE_KEYS = ("date_max", "end", "last_date", "max_date")


@dataclass(frozen=True)
class Freshness:
    now: dt.datetime
    latest_session: dt.date | None
    expected_session: dt.date
    due_session: dt.date
    due_deadline: dt.datetime
    sessions_behind: int
    stale: bool
    in_by_deadline: bool | None

    def summary(self) -> str:
        """One line for a person."""
        if self.latest_session is None:
            return (f"no price data stored yet; {self.due_session} is due by "
                    f"{self.due_deadline:%Y-%m-%d %H:%M %Z}")
        state = "STALE" if self.stale else "fresh"
        behind = f", {self.sessions_behind} session(s) behind" if self.sessions_behind else ""
        timely = {True: "in by the deadline", False: "NOT in by the deadline", None: "unknown"}
        return (f"{state}: latest stored session {self.latest_session} (last completed session "
                f"{self.expected_session}{behind}); {self.due_session} due by "
                f"{self.due_deadline:%Y-%m-%d %H:%M %Z}: {timely[self.in_by_deadline]}")

    def to_dict(self) -> dict[str, object]:
        return {
            "now": self.now.isoformat(),
            "latest_session": self.latest_session and self.latest_session.isoformat(),
            "expected_session": self.expected_session.isoformat(),
            "due_session": self.due_session.isoformat(),
            "due_deadline": self.due_deadline.isoformat(),
            "sessions_behind": self.sessions_behind,
            "stale": self.stale,
            "in_by_deadline": self.in_by_deadline,
        }


def deadline_for(session: dt.date, config: AuroraConfig) -> dt.datetime:
    """The aware datetime of `session`'s data deadline (validated with the configuration)."""
    return config.ops.deadline_on(session)


def _max_date_of(store: Store, version: str, entry: FileEntry) -> dt.date | None:
    for key in _DATE_KEYS:
        value = entry.meta(key)
        if value:
            return dt.date.fromisoformat(str(value)[:10])
    path = store.archive / version / PRICES  # only a single-file version lacks date_max
    try:
        value = pl.scan_parquet(path).select(pl.col("date").max()).collect().item()
    except Exception as exc:  # a corrupt file is validate's business; report, don't crash
        raise StoreError(f"{path}: cannot read the latest date ({type(exc).__name__})") from None
    return value


def latest_stored_session(store: Store, version: str | None = None) -> dt.date | None:
    """The newest session in the prices of `version` (default latest); None if absent."""
    version = version or store.current_version()
    if version is None:
        return None
    entry = store.manifest(version).prices_entry()
    if entry is None:
        return None
    return _max_date_of(store, version, entry)


def _first_published_holding(store: Store, session: dt.date) -> dt.datetime | None:
    """Creation time of the oldest version whose prices reach `session`."""
    seen: dict[str, dt.date | None] = {}
    for version in store.versions():
        manifest = store.manifest(version)
        entry = manifest.prices_entry()
        if entry is None:
            continue
        if entry.sha256 not in seen:
            seen[entry.sha256] = _max_date_of(store, version, entry)
        reached = seen[entry.sha256]
        if reached is not None and reached >= session:
            return manifest.created_at
    return None


def check_freshness(store: Store, config: AuroraConfig,
                    now: dt.datetime | None = None) -> Freshness:
    """Freshness of the store at `now` (UTC-aware; default the current time)."""
    now = now or dt.datetime.now(dt.UTC)
    expected = calendar.last_completed_session(now)
    due = expected
    while deadline_for(due, config) > now:
        due = calendar.previous_session(due)
    due_deadline = deadline_for(due, config)
    latest = latest_stored_session(store)
    if latest is None:
        return Freshness(now, None, expected, due, due_deadline, 0, False, None)
    behind = len(calendar.sessions(latest + dt.timedelta(days=1), expected))
    stale = latest < due
    if stale:
        in_time: bool | None = False
    else:
        published = _first_published_holding(store, due)
        in_time = None if published is None else published <= due_deadline
    return Freshness(now, latest, expected, due, due_deadline, behind, stale, in_time)
