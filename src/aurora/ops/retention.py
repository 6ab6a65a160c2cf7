"""Retention: delete old store versions, never the one `latest` points to.

`prune` keeps the newest `keep_versions` versions (or, when `keep_days` is set, those created
in the last `keep_days` days) and never deletes the version `latest` points to. A version is
first renamed into a staging name and then deleted, so a killed prune never leaves a
half-deleted version that still looks published.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from dataclasses import dataclass

from aurora.errors import ConfigError
from aurora.store import Store


@dataclass
class PruneReport:
    kept: list[str]
    removed: list[str]
    latest: str | None
    dry_run: bool = False

    def summary_lines(self) -> list[str]:
        verb = "would remove" if self.dry_run else "removed"
        lines = [f"prune: {verb} {len(self.removed)} version(s), kept {len(self.kept)} "
                 f"(latest {self.latest})"]
        lines += [f"  {verb} {v}" for v in self.removed]
        return lines


def _created(store: Store, version: str) -> dt.datetime:
    created = store.manifest(version).created_at
    return created if created.tzinfo else created.replace(tzinfo=dt.UTC)


def prune(store: Store, *, keep_versions: int = 20, keep_days: int | None = None,
          now: dt.datetime | None = None, dry_run: bool = False) -> PruneReport:
    """Remove old versions; see the module docstring for the policy."""
    if keep_versions < 1 or (keep_days is not None and keep_days < 1):
        raise ConfigError("prune: keep_versions and keep_days must be at least 1")
    with store.lock():
        store.clean_staging()
        versions = store.versions()
        latest = store.current_version()
        if keep_days is not None:
            cutoff = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=keep_days)
            keep = {v for v in versions if _created(store, v) >= cutoff}
        else:
            keep = set(versions[-keep_versions:])
        if latest is not None:
            keep.add(latest)
        removed = [v for v in versions if v not in keep]
        if not dry_run:
            for version in removed:
                doomed = store.archive / f".staging-prune-{uuid.uuid4().hex}"
                os.rename(store.archive / version, doomed)
                shutil.rmtree(doomed, ignore_errors=True)
    return PruneReport([v for v in versions if v in keep], removed, latest, dry_run)
