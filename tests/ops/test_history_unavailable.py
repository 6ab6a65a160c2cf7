"""A corrupt `aurora.db` does not silence monitoring (issue item 13): alerts are still
posted, the broken database raises its own alert, metrics are written, and `aurora status`
says what is wrong instead of crashing."""

import contextlib
import datetime as dt
import json
import random
import sqlite3

import pytest
from ops_helpers import Receiver, prices_frame, publish

from aurora.cli.main import main
from aurora.config import AuroraConfig, OpsConfig
from aurora.errors import DataValidationError, StoreError
from aurora.ops.audit import AuditLog
from aurora.ops.history import History
from aurora.ops.runner import run_context
from aurora.ops.status import collect_status
from aurora.store import Store

LATE = dt.datetime(2024, 3, 15, 22, 0, tzinfo=dt.UTC)  # after Friday's deadline
NO_SLEEP = lambda seconds: None  # noqa: E731


def _corrupt(data_dir) -> bytes:
    """Random bytes (seeded) in place of the database; returns them."""
    garbage = random.Random(13).randbytes(8192)
    (data_dir / "aurora.db").write_bytes(garbage)
    return garbage


def test_a_corrupt_database_is_a_one_line_store_error_naming_the_file(data_dir):
    _corrupt(data_dir)
    history = History(data_dir)
    for call in (history.recent_runs, history.alerts, history.latest_run_per_command):
        with pytest.raises(StoreError) as info:
            call()
        message = str(info.value)
        assert "\n" not in message and str(data_dir / "aurora.db") in message
        assert "file is not a database" in message


def test_alerts_and_metrics_survive_a_corrupt_database(store, receiver: Receiver, caplog):
    garbage = _corrupt(store.root)
    publish(store, "fetch", **{"prices.parquet": prices_frame(dt.date(2024, 3, 14))})
    cfg = AuroraConfig(data_dir=store.root, ops=OpsConfig(webhook_url=receiver.url()))
    with pytest.raises(DataValidationError), \
            run_context(store, cfg, "build", now=lambda: LATE, sleep=NO_SLEEP) as run:
        run.record_coverage(["AAA", "BBB", "CCC"], ["AAA", "BBB"])
        with run.stage("build"):
            raise DataValidationError("gate failed")
    rules = {post["alert"]["rule"]: post for post in receiver.posts}
    assert set(rules) == {"failed_run", "stale_data", "history_unavailable"}
    broken = rules["history_unavailable"]["alert"]
    assert broken["severity"] == "critical" and broken["id"] is None
    assert str(store.root / "aurora.db") in broken["message"]
    assert "file is not a database" in broken["message"]
    assert "move the file aside to start a new one" in broken["message"]
    assert "token-s3cr3t" not in json.dumps(receiver.posts)
    assert "CCC" in rules["failed_run"]["text"]
    assert {a.rule for a in run.alerts} == set(rules)
    metrics = (store.root / "metrics" / "aurora.prom").read_text()
    assert 'aurora_run_success{command="build"} 0.0' in metrics
    assert "aurora_data_stale 1.0" in metrics and "aurora_history_available 0.0" in metrics
    assert "aurora_open_alerts" not in metrics  # unknown without the history
    assert (store.root / "aurora.db").read_bytes() == garbage  # left for a person to inspect
    assert "run not recorded in the history" in caplog.text
    assert "run bookkeeping failed" not in caplog.text
    [audit] = AuditLog(store.root).records()
    assert audit["command"] == "build" and audit["runs"] == []  # no history row to point to


def test_a_healthy_database_reports_itself_available(store):
    with run_context(store, AuroraConfig(data_dir=store.root), "prune"):
        pass
    metrics = (store.root / "metrics" / "aurora.prom").read_text()
    assert "aurora_history_available 1.0" in metrics


def test_a_command_on_a_corrupt_database_still_alerts(data_dir, receiver, monkeypatch, capsys):
    _corrupt(data_dir)
    monkeypatch.setenv("AURORA_WEBHOOK_URL", receiver.url())
    assert main(["prune", "--data-dir", str(data_dir)]) == 0
    capsys.readouterr()
    assert [p["alert"]["rule"] for p in receiver.posts] == ["history_unavailable"]


def test_status_says_the_history_is_unavailable(data_dir, capsys):
    store = Store(data_dir)
    version = publish(store, "fetch", **{"prices.parquet": prices_frame(dt.date(2024, 3, 15))})
    _corrupt(data_dir)
    report = collect_status(store, AuroraConfig(data_dir=data_dir))
    assert report.runs == [] and report.alerts == [] and report.latest_version == version
    assert str(data_dir / "aurora.db") in (report.history_error or "")
    assert main(["status", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("run history unavailable: "))
    assert str(data_dir / "aurora.db") in line and "file is not a database" in line
    assert line.endswith("; move the file aside to start a new one")
    assert "no open alerts" not in out and f"latest version: {version}" in out
    assert main(["status", "--json", "--data-dir", str(data_dir)]) == 0
    status = json.loads(capsys.readouterr().out)
    assert "file is not a database" in status["history_error"]
    assert status["latest_version"] == version


def test_moving_the_file_aside_starts_a_new_history(data_dir, capsys):
    _corrupt(data_dir)
    (data_dir / "aurora.db").rename(data_dir / "aurora.db.broken")
    assert main(["prune", "--data-dir", str(data_dir)]) == 0
    capsys.readouterr()
    assert [r.command for r in History(data_dir).recent_runs()] == ["prune"]
    with contextlib.closing(sqlite3.connect(data_dir / "aurora.db")) as conn:
        assert conn.execute("SELECT count(*) FROM alerts").fetchone()[0] == 0
