import contextlib
import os
import sqlite3
import stat

import pytest

from aurora.errors import StoreError
from aurora.ops import history as history_module
from aurora.ops.history import SCHEMA_VERSION, History, QualityResult, RunRecord, StageRecord


def _run(run_id: str, started: str, stages: dict[str, float], success: bool = True
         ) -> RunRecord:
    return RunRecord(
        id=run_id, command="run", started_at=started, ended_at=started, duration_seconds=1.5,
        success=success, exit_code=0 if success else 5, error=None if success else "boom",
        peak_rss_bytes=1024, rows=10, symbols=2, requests=3, retries=1, coverage=0.5,
        stages=[StageRecord(n, started, s, 2048, success) for n, s in stages.items()],
        quality=[QualityResult("gate", success, [] if success else ["bad"])],
        details={"missing_symbols": ["BBB"]},
    )


def test_db_is_owner_only_even_with_permissive_umask(data_dir):
    old = os.umask(0)
    try:
        History(data_dir).record_run(_run("r1", "2026-01-01T00:00:00", {"fetch": 1.0}))
    finally:
        os.umask(old)
    mode = stat.S_IMODE((data_dir / "aurora.db").stat().st_mode)
    assert mode == 0o600


def test_round_trip_newest_first(data_dir):
    history = History(data_dir)
    history.record_run(_run("r1", "2026-01-01T00:00:00", {"fetch": 1.0, "build": 2.0}))
    history.record_run(_run("r2", "2026-01-02T00:00:00", {"fetch": 3.0}, success=False))
    runs = history.recent_runs()
    assert [r.id for r in runs] == ["r2", "r1"]
    first = runs[1]
    assert [(s.name, s.seconds) for s in first.stages] == [("fetch", 1.0), ("build", 2.0)]
    assert first.quality == [QualityResult("gate", True, [], [])]
    assert first.details == {"missing_symbols": ["BBB"]}
    assert (first.rows, first.symbols, first.requests, first.retries) == (10, 2, 3, 1)
    assert runs[0].success is False and runs[0].error == "boom"
    assert history.recent_runs(limit=1, command="other") == []


def test_stage_median_uses_recent_successful_runs_only(data_dir):
    history = History(data_dir)
    for i, seconds in enumerate([1.0, 2.0, 9.0, 4.0]):
        history.record_run(_run(f"r{i}", f"2026-01-0{i + 1}T00:00:00", {"build": seconds}))
    history.record_run(_run("bad", "2026-01-09T00:00:00", {"build": 100.0}, success=False))
    assert history.stage_median("build", limit=3) == (4.0, 3)  # 2, 9, 4 -> 4
    assert history.stage_median("build", limit=10, exclude_run="r2") == (2.0, 3)
    assert history.stage_median("nothing") == (None, 0)


def test_alert_dedup_while_open(data_dir):
    history = History(data_dir)
    kwargs = dict(run_id="r1", rule="stale_data", key="stale:2026-01-02", severity="critical",
                  message="stale", details={})
    first = history.add_alert(**kwargs)
    assert first is not None
    assert history.add_alert(**kwargs) is None
    assert [a.id for a in history.alerts()] == [first]
    assert history.close_alerts(rule="stale_data", status="resolved") == 1
    assert history.alerts() == []
    again = history.add_alert(**kwargs)
    assert again is not None and again != first
    history.mark_delivery(again, False, 4, "HTTP 500")
    alert = history.alerts()[0]
    assert (alert.delivered, alert.delivery_attempts, alert.delivery_error) == (False, 4,
                                                                                "HTTP 500")
    assert len(history.alerts(status=None)) == 2


def test_latest_run_per_command(data_dir):
    history = History(data_dir)
    history.record_run(_run("a", "2026-01-01T00:00:00", {}))
    history.record_run(_run("b", "2026-01-03T00:00:00", {}))
    other = _run("c", "2026-01-02T00:00:00", {})
    other.command = "backup"
    history.record_run(other)
    assert [(r.command, r.id) for r in history.latest_run_per_command()] == [
        ("backup", "c"), ("run", "b")]


# The schema as the code before versioned migrations created it (user_version 0).
OLD_V0_SCHEMA = """
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


def _user_version(path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute("PRAGMA user_version").fetchone()[0]


def _columns(path, table: str) -> list[str]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def test_old_unversioned_database_is_migrated_in_place(data_dir):
    path = data_dir / "aurora.db"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.executescript(OLD_V0_SCHEMA)
        conn.execute(
            "INSERT INTO runs (id, command, started_at, ended_at, duration_seconds, success,"
            " exit_code, rows, symbols, quality_json, details_json)"
            " VALUES ('old', 'run', '2025-12-31T00:00:00', '2025-12-31T00:01:00', 60.0, 1, 0,"
            " 42, 7, '[]', '{\"note\": \"kept\"}')")
        conn.execute(
            "INSERT INTO stages (run_id, position, stage, started_at, duration_seconds, ok)"
            " VALUES ('old', 0, 'fetch', '2025-12-31T00:00:00', 12.5, 1)")
        conn.execute(
            "INSERT INTO alerts (run_id, rule, key, severity, message, created_at)"
            " VALUES ('old', 'stale_data', 'stale:x', 'critical', 'old alert', '2025-12-31')")
        conn.commit()
    os.chmod(path, 0o600)
    assert _user_version(path) == 0

    history = History(data_dir)
    [old] = history.recent_runs()
    assert _user_version(path) == SCHEMA_VERSION == 3
    assert {"universe_source", "universe_symbols"} <= set(_columns(path, "runs"))
    assert (old.id, old.rows, old.symbols, old.details) == ("old", 42, 7, {"note": "kept"})
    assert [(s.name, s.seconds) for s in old.stages] == [("fetch", 12.5)]
    assert (old.universe_source, old.universe_symbols) == (None, None)
    [alert] = history.alerts()
    assert (alert.message, alert.run_id) == ("old alert", "old")

    new = _run("new", "2026-01-01T00:00:00", {"fetch": 1.0})
    new.universe_source, new.universe_symbols = "universe.txt", 130
    history.record_run(new)
    runs = history.recent_runs()
    assert [(r.id, r.universe_source, r.universe_symbols) for r in runs] == [
        ("new", "universe.txt", 130), ("old", None, None)]
    [latest] = history.latest_run_per_command()
    assert (latest.universe_source, latest.universe_symbols) == ("universe.txt", 130)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    fresh = data_dir / "fresh"
    History(fresh).record_run(_run("x", "2026-01-01T00:00:00", {}))
    for table in ("runs", "stages", "alerts"):  # upgraded in place == created new
        assert _columns(path, table) == _columns(fresh / "aurora.db", table)


def test_newer_schema_version_is_refused(data_dir):
    path = data_dir / "aurora.db"
    history = History(data_dir)
    history.record_run(_run("r1", "2026-01-01T00:00:00", {}))
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    with pytest.raises(StoreError) as info:
        history.recent_runs()
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    assert f"version {SCHEMA_VERSION + 5}" in message and f"({SCHEMA_VERSION})" in message
    assert _user_version(path) == SCHEMA_VERSION + 5  # left untouched


def test_fresh_database_ends_at_the_latest_version(data_dir):
    history = History(data_dir)
    run = _run("r1", "2026-01-01T00:00:00", {"fetch": 1.0})
    run.universe_source, run.universe_symbols = "default", 130
    history.record_run(run)
    path = data_dir / "aurora.db"
    assert _user_version(path) == SCHEMA_VERSION
    assert _columns(path, "runs")[-2:] == ["universe_source", "universe_symbols"]
    [back] = history.recent_runs()
    assert (back.universe_source, back.universe_symbols) == ("default", 130)
    history.recent_runs()  # reconnecting to a current database changes nothing
    assert _user_version(path) == SCHEMA_VERSION


def test_failed_migration_rolls_back(data_dir, monkeypatch):
    path = data_dir / "aurora.db"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.executescript(OLD_V0_SCHEMA)
    monkeypatch.setattr(history_module, "_MIGRATIONS",
                        (*history_module._MIGRATIONS[:1], "ALTER TABLE runs ADD COLUMN x TEXT;\n"
                         "ALTER TABLE nowhere ADD COLUMN y TEXT;"))
    with pytest.raises(StoreError, match=r"aurora.db: run history unreadable \(SQLite: no such "
                       r"table: nowhere\)"):
        History(data_dir).recent_runs()
    assert _user_version(path) == 0 and "x" not in _columns(path, "runs")
