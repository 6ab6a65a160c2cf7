"""Run history and alerts in SQLite (`data/aurora.db`, created owner-only 0600).

Tables:
- `runs`: one row per command run (timings, peak memory, counters, quality, outcome);
- `stages`: one row per stage of a run (seconds, peak RSS in bytes, ok);
- `tracked_predictions`: each published predictions.json scored once its horizon passed
  (`aurora.ops.tracking`, which owns its queries);
- `alerts`: raised alerts with status `open` | `acknowledged` | `resolved` and the webhook
  delivery outcome. `key` deduplicates alerts that describe a lasting condition (stale
  data): a new alert with the key of an open one is not stored twice.

Schema versions live in `PRAGMA user_version`. Each connection reads it once (cheap); when
it is below `SCHEMA_VERSION` the missing entries of `_MIGRATIONS` run in order inside one
write transaction, which also sets the new version (a crash leaves the old version and no
half-applied migration). Version 0 is a database made before versioning (its tables, if any,
are migration 1's) or a new file. A version newer than this code knows raises `StoreError`.
Migrations only ever add: rows already stored are kept.

A database that cannot be used (not a database, corrupt, unreadable: any `sqlite3.DatabaseError`
or OS error while opening or using it) raises a one-line `StoreError` naming the file and
the SQLite error (`HistoryUnavailable`); callers that can work without history catch it
(`aurora.ops.runner`, `aurora.ops.status`).

Nothing secret is ever written here: callers pass redacted text (see `aurora.redaction`).
All timestamps are ISO 8601 UTC strings. Connections are short-lived (one per call site).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sqlite3
import statistics
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aurora.atomic import private_dir
from aurora.errors import StoreError

DB_NAME = "aurora.db"
MOVE_ASIDE = "move the file aside to start a new one"

# Migration 1: the schema as it was before versioning (databases with user_version 0).
_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    command TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT NOT NULL,
    duration_seconds REAL NOT NULL,
    success INTEGER NOT NULL,
    exit_code INTEGER NOT NULL,
    error TEXT,
    peak_rss_bytes INTEGER,
    rows INTEGER NOT NULL DEFAULT 0,
    symbols INTEGER NOT NULL DEFAULT 0,
    requests INTEGER NOT NULL DEFAULT 0,
    retries INTEGER NOT NULL DEFAULT 0,
    coverage REAL,
    version_before TEXT,
    version_after TEXT,
    quality_json TEXT NOT NULL DEFAULT '[]',
    details_json TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS runs_started ON runs(started_at);
CREATE TABLE IF NOT EXISTS stages (
    run_id TEXT NOT NULL REFERENCES runs(id),
    position INTEGER NOT NULL,
    stage TEXT NOT NULL,
    started_at TEXT NOT NULL,
    duration_seconds REAL NOT NULL,
    peak_rss_bytes INTEGER,
    ok INTEGER NOT NULL,
    PRIMARY KEY (run_id, position)
);
CREATE INDEX IF NOT EXISTS stages_name ON stages(stage, started_at);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT,
    rule TEXT NOT NULL,
    key TEXT NOT NULL,
    severity TEXT NOT NULL,
    message TEXT NOT NULL,
    details_json TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    closed_at TEXT,
    delivered INTEGER,
    delivery_attempts INTEGER NOT NULL DEFAULT 0,
    delivery_error TEXT
);
CREATE INDEX IF NOT EXISTS alerts_open ON alerts(status, key);
"""

# Migration 2: where the run's universe came from and how many symbols it held.
_SCHEMA_V2 = """
ALTER TABLE runs ADD COLUMN universe_source TEXT;
ALTER TABLE runs ADD COLUMN universe_symbols INTEGER;
"""

# Migration 3: published predictions scored once their horizon passed (aurora.ops.tracking).
_SCHEMA_V3 = """
CREATE TABLE IF NOT EXISTS tracked_predictions (
    version TEXT PRIMARY KEY,
    decision_date TEXT NOT NULL,
    horizon INTEGER NOT NULL,
    label_end TEXT NOT NULL,
    model TEXT,
    names INTEGER NOT NULL,
    rank_ic REAL,
    spread REAL,
    top_k INTEGER NOT NULL,
    top_k_return REAL,
    universe_return REAL,
    walk_forward_rank_ic REAL,
    walk_forward_rank_ic_std REAL,
    scored_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tracked_decision ON tracked_predictions(decision_date);
"""

# Entry i brings a database from user_version i to i + 1. Append only; never edit one.
_MIGRATIONS: tuple[str, ...] = (_SCHEMA_V1, _SCHEMA_V2, _SCHEMA_V3)
SCHEMA_VERSION = len(_MIGRATIONS)


@dataclass
class StageRecord:
    """One stage of a run. `peak_rss_bytes` is the process's peak RSS at the stage's end."""

    name: str
    started_at: str
    seconds: float
    peak_rss_bytes: int | None
    ok: bool


@dataclass
class QualityResult:
    """The outcome of one validation / quality gate inside a run."""

    name: str
    ok: bool
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class RunRecord:
    """Everything recorded about one command run (all text already redacted)."""

    id: str
    command: str
    started_at: str
    ended_at: str
    duration_seconds: float
    success: bool
    exit_code: int
    error: str | None = None
    peak_rss_bytes: int | None = None
    rows: int = 0
    symbols: int = 0
    requests: int = 0
    retries: int = 0
    coverage: float | None = None
    version_before: str | None = None
    version_after: str | None = None
    universe_source: str | None = None
    universe_symbols: int | None = None
    stages: list[StageRecord] = field(default_factory=list)
    quality: list[QualityResult] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AlertRecord:
    """A stored alert."""

    id: int
    run_id: str | None
    rule: str
    key: str
    severity: str
    message: str
    details: dict[str, Any]
    created_at: str
    status: str
    delivered: bool | None
    delivery_attempts: int
    delivery_error: str | None


def utc_now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


class HistoryUnavailable(StoreError):
    """The run-history database cannot be read or written; the message names the file and
    the SQLite (or OS) error, e.g. `data/aurora.db: run history unreadable (SQLite: file is
    not a database)`."""


def create_private_file(path: Path) -> None:
    """Create `path` (and its parent) if missing; make it owner-only (0600) regardless of umask."""
    private_dir(path.parent)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


def schema_version(conn: sqlite3.Connection) -> int:
    """The database's `PRAGMA user_version` (0 for a file made before versioning)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _statements(script: str) -> list[str]:
    """Split an SQL script into single statements (for `execute` inside a transaction)."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement in a migration: {pending.strip()[:60]}")
    return statements


def _check_not_newer(version: int, path: Path) -> None:
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: run-history schema version {version} is newer than this Aurora supports"
            f" ({SCHEMA_VERSION}); upgrade Aurora or use another data directory"
        )


def migrate(conn: sqlite3.Connection, path: Path) -> int:
    """Bring the database of `conn` (file `path`, named in errors) to `SCHEMA_VERSION`.

    `conn` must not be inside a transaction (call it right after connecting).
    Reads `user_version` once; when it is current this is all it does. Otherwise it takes
    the write lock (`BEGIN IMMEDIATE`), reads the version again (another process may have
    migrated meanwhile), applies the missing migrations and sets `user_version`, all in one
    transaction that is rolled back on any error. Returns the version reached.
    """
    version = schema_version(conn)
    _check_not_newer(version, path)
    if version == SCHEMA_VERSION:
        return version
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = schema_version(conn)
        _check_not_newer(version, path)
        for script in _MIGRATIONS[version:]:
            for statement in _statements(script):
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    return SCHEMA_VERSION


class History:
    """The run-history database of one data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / DB_NAME

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection to the migrated database inside a transaction (commit on success,
        rollback on error). Raises `StoreError` when the file's schema is newer than this code,
        and `HistoryUnavailable` (a StoreError) when the file cannot be used as a database.
        """
        try:
            create_private_file(self.path)
            conn = sqlite3.connect(self.path, timeout=30)
        except (OSError, sqlite3.DatabaseError) as exc:
            raise self._unavailable(exc) from None
        try:
            conn.row_factory = sqlite3.Row
            migrate(conn, self.path)
            with conn:
                yield conn
        except sqlite3.DatabaseError as exc:
            raise self._unavailable(exc) from None
        finally:
            conn.close()

    def _unavailable(self, exc: BaseException) -> HistoryUnavailable:
        """The one-line error for a database that cannot be used (never the SQL text)."""
        kind = "SQLite" if isinstance(exc, sqlite3.Error) else type(exc).__name__
        reason = (exc.strerror or str(exc)) if isinstance(exc, OSError) else str(exc)
        text = " ".join(reason.split())[:200] or type(exc).__name__
        return HistoryUnavailable(f"{self.path}: run history unreadable ({kind}: {text})")

    # -- runs ----------------------------------------------------------------------------
    def record_run(self, run: RunRecord) -> None:
        """Insert (or replace) a run and its stages."""
        with self.connect() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO runs (id, command, started_at, ended_at, duration_seconds,"
                " success, exit_code, error, peak_rss_bytes, rows, symbols, requests, retries,"
                " coverage, version_before, version_after, universe_source, universe_symbols,"
                " quality_json, details_json)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (run.id, run.command, run.started_at, run.ended_at, run.duration_seconds,
                 int(run.success), run.exit_code, run.error, run.peak_rss_bytes, run.rows,
                 run.symbols, run.requests, run.retries, run.coverage, run.version_before,
                 run.version_after, run.universe_source, run.universe_symbols,
                 json.dumps([asdict(q) for q in run.quality]),
                 json.dumps(run.details, default=str)),
            )
            conn.execute("DELETE FROM stages WHERE run_id = ?", (run.id,))
            conn.executemany(
                "INSERT INTO stages (run_id, position, stage, started_at, duration_seconds,"
                " peak_rss_bytes, ok) VALUES (?,?,?,?,?,?,?)",
                [(run.id, i, s.name, s.started_at, s.seconds, s.peak_rss_bytes, int(s.ok))
                 for i, s in enumerate(run.stages)],
            )

    def recent_runs(self, limit: int = 10, command: str | None = None) -> list[RunRecord]:
        """The latest runs, newest first."""
        if not self.path.exists():
            return []
        where, args = ("WHERE command = ?", [command]) if command else ("", [])
        with self.connect() as conn:
            rows = conn.execute(
                f"SELECT * FROM runs {where} ORDER BY started_at DESC, rowid DESC LIMIT ?",
                [*args, limit],
            ).fetchall()
            return [self._run(conn, row) for row in rows]

    def latest_run_per_command(self) -> list[RunRecord]:
        """The most recent run of each command, sorted by command name."""
        if not self.path.exists():
            return []
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT * FROM runs r WHERE rowid = (SELECT rowid FROM runs WHERE command ="
                " r.command ORDER BY started_at DESC, rowid DESC LIMIT 1) ORDER BY command"
            ).fetchall()
            return [self._run(conn, row) for row in rows]

    def stage_median(self, stage: str, limit: int = 10, exclude_run: str | None = None
                     ) -> tuple[float | None, int]:
        """Median seconds of the last `limit` successful runs of `stage`, and the sample size."""
        if not self.path.exists():
            return None, 0
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT duration_seconds FROM stages WHERE stage = ? AND ok = 1 AND run_id != ?"
                " ORDER BY started_at DESC LIMIT ?",
                (stage, exclude_run or "", limit),
            ).fetchall()
        values = [r[0] for r in rows]
        return (statistics.median(values) if values else None), len(values)

    @staticmethod
    def _run(conn: sqlite3.Connection, row: sqlite3.Row) -> RunRecord:
        stages = [
            StageRecord(s["stage"], s["started_at"], s["duration_seconds"], s["peak_rss_bytes"],
                        bool(s["ok"]))
            for s in conn.execute(
                "SELECT * FROM stages WHERE run_id = ? ORDER BY position", (row["id"],)
            )
        ]
        return RunRecord(
            id=row["id"], command=row["command"], started_at=row["started_at"],
            ended_at=row["ended_at"], duration_seconds=row["duration_seconds"],
            success=bool(row["success"]), exit_code=row["exit_code"], error=row["error"],
            peak_rss_bytes=row["peak_rss_bytes"], rows=row["rows"], symbols=row["symbols"],
            requests=row["requests"], retries=row["retries"], coverage=row["coverage"],
            version_before=row["version_before"], version_after=row["version_after"],
            universe_source=row["universe_source"], universe_symbols=row["universe_symbols"],
            stages=stages,
            quality=[QualityResult(**q) for q in json.loads(row["quality_json"])],
            details=json.loads(row["details_json"]),
        )

    # -- alerts --------------------------------------------------------------------------
    def add_alert(self, *, run_id: str | None, rule: str, key: str, severity: str,
                  message: str, details: dict[str, Any]) -> int | None:
        """Store an alert; None (nothing stored) when an open alert with `key` exists."""
        with self.connect() as conn:
            exists = conn.execute(
                "SELECT 1 FROM alerts WHERE status = 'open' AND key = ?", (key,)
            ).fetchone()
            if exists:
                return None
            cur = conn.execute(
                "INSERT INTO alerts (run_id, rule, key, severity, message, details_json,"
                " created_at) VALUES (?,?,?,?,?,?,?)",
                (run_id, rule, key, severity, message, json.dumps(details, default=str),
                 utc_now_iso()),
            )
            return int(cur.lastrowid or 0)

    def mark_delivery(self, alert_id: int, delivered: bool, attempts: int,
                      error: str | None) -> None:
        with self.connect() as conn:
            conn.execute(
                "UPDATE alerts SET delivered = ?, delivery_attempts = ?, delivery_error = ?"
                " WHERE id = ?", (int(delivered), attempts, error, alert_id),
            )

    def close_alerts(self, *, status: str = "acknowledged", alert_id: int | None = None,
                     rule: str | None = None) -> int:
        """Close open alerts by id or by rule; returns how many were closed."""
        if status not in ("acknowledged", "resolved"):
            raise ValueError(f"bad alert status {status!r}")
        if alert_id is None and rule is None:
            raise ValueError("close_alerts needs alert_id or rule")
        clause, arg = ("id = ?", alert_id) if alert_id is not None else ("rule = ?", rule)
        with self.connect() as conn:
            cur = conn.execute(
                f"UPDATE alerts SET status = ?, closed_at = ? WHERE status = 'open' AND {clause}",
                (status, utc_now_iso(), arg),
            )
            return cur.rowcount

    def alerts(self, status: str | None = "open", limit: int = 50) -> list[AlertRecord]:
        """Alerts with `status` (None: any), newest first."""
        if not self.path.exists():
            return []
        where, args = ("WHERE status = ?", [status]) if status else ("", [])
        with self.connect() as conn:
            rows = conn.execute(
                f"SELECT * FROM alerts {where} ORDER BY id DESC LIMIT ?", [*args, limit]
            ).fetchall()
        return [
            AlertRecord(
                id=r["id"], run_id=r["run_id"], rule=r["rule"], key=r["key"],
                severity=r["severity"], message=r["message"],
                details=json.loads(r["details_json"]), created_at=r["created_at"],
                status=r["status"],
                delivered=None if r["delivered"] is None else bool(r["delivered"]),
                delivery_attempts=r["delivery_attempts"], delivery_error=r["delivery_error"],
            )
            for r in rows
        ]
