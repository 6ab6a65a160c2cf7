import datetime as dt
import json
import stat

import pytest
from ops_helpers import Receiver, prices_frame, publish

from aurora.config import AlpacaConfig, AuroraConfig, OpsConfig
from aurora.errors import ConfigError, DataValidationError
from aurora.ops import runner as runner_module
from aurora.ops.audit import AuditLog
from aurora.ops.history import History
from aurora.ops.runner import run_context
from aurora.store import Store

NOW = dt.datetime(2024, 3, 15, 20, 30, tzinfo=dt.UTC)  # Friday, after close, before deadline


def _config(store: Store, **ops) -> AuroraConfig:
    return AuroraConfig(data_dir=store.root, ops=OpsConfig(**ops))


def test_successful_run_is_recorded_everywhere(store):
    cfg = _config(store)
    with run_context(store, cfg, "fetch", now=lambda: NOW) as run:
        with run.stage("fetch"):
            publish(store, "fetch", **{"prices.parquet": prices_frame(dt.date(2024, 3, 14))})
            run.add(rows=6, symbols=2, requests=3, retries=1, bars=6)
        run.record_coverage(["AAA", "BBB"], ["AAA", "BBB"])
        run.record_quality("prices", True, warnings=["one gap"])
    [record] = History(store.root).recent_runs()
    assert record.success and record.command == "fetch" and record.exit_code == 0
    assert (record.rows, record.symbols, record.requests, record.retries) == (6, 2, 3, 1)
    assert record.details["counters"] == {"bars": 6} and record.coverage == 1.0
    assert [s.name for s in record.stages] == ["fetch"] and record.stages[0].ok
    assert record.peak_rss_bytes and record.peak_rss_bytes > 10_000_000
    assert record.version_before is None and record.version_after == store.current_version()
    assert run.freshness is not None and not run.freshness.stale and run.alerts == []
    metrics = (store.root / "metrics" / "aurora.prom").read_text()
    assert 'aurora_stage_duration_seconds{command="fetch",stage="fetch"}' in metrics
    assert "aurora_latest_session_age_sessions 1" in metrics
    [audit] = AuditLog(store.root).records()
    assert audit["command"] == "fetch" and audit["outcome"] == "ok"
    assert audit["runs"] == [record.id]
    assert [w["path"].rsplit("/", 1)[1] for w in audit["written"]] == ["prices.parquet"]
    for name in ("aurora.db", "audit/audit.jsonl"):
        assert stat.S_IMODE((store.root / name).stat().st_mode) == 0o600


def test_failed_run_alerts_the_webhook_and_reraises(store, receiver: Receiver):
    secret = "planted-SECRET-9f3a"
    cfg = AuroraConfig(data_dir=store.root, alpaca=AlpacaConfig(secret_key=secret),
                       ops=OpsConfig(webhook_url=receiver.url()))
    with pytest.raises(DataValidationError), \
            run_context(store, cfg, "build", now=lambda: NOW, sleep=lambda s: None) as run:
        run.record_coverage(["AAA", "BBB", "CCC"], ["AAA", "BBB"])
        with run.stage("build"):
            raise DataValidationError(f"gate failed near {secret}")
    [record] = History(store.root).recent_runs()
    assert not record.success and record.exit_code == 5
    assert record.error == "gate failed near ***"
    assert record.stages[0].ok is False
    # one alert names the failure (with its coverage); an empty store is not "stale"
    [post] = receiver.posts
    assert post["alert"]["rule"] == "failed_run"
    assert post["alert"]["details"]["missing_symbols"] == ["CCC"] and "CCC" in post["text"]
    blob = json.dumps(receiver.posts) + (store.root / "aurora.db").read_bytes().decode(
        "latin-1") + (store.root / "audit" / "audit.jsonl").read_text()
    assert secret not in blob and "token-s3cr3t" not in blob


def test_stale_alert_raised_once_and_resolved_when_fresh(store, receiver: Receiver):
    cfg = _config(store, webhook_url=receiver.url())
    late = dt.datetime(2024, 3, 15, 22, 0, tzinfo=dt.UTC)  # after Friday's deadline
    publish(store, "fetch", **{"prices.parquet": prices_frame(dt.date(2024, 3, 14))})
    for _ in range(2):
        with run_context(store, cfg, "status-check", now=lambda: late):
            pass
    assert [p["alert"]["rule"] for p in receiver.posts] == ["stale_data"]
    publish(store, "fetch", **{"prices.parquet": prices_frame(dt.date(2024, 3, 15))})
    with run_context(store, cfg, "fetch", now=lambda: late):
        pass
    history = History(store.root)
    assert history.alerts("open") == []
    assert [a.status for a in history.alerts(None)] == ["resolved"]


def test_bookkeeping_failure_does_not_mask_the_outcome(store, caplog, monkeypatch):
    def cannot(*args, **kwargs):
        raise ConfigError("ops.deadline: cannot be computed here")

    monkeypatch.setattr(runner_module, "check_freshness", cannot)  # freshness fails
    with run_context(store, _config(store), "x", now=lambda: NOW):
        pass
    assert History(store.root).recent_runs()[0].success
    assert "freshness not checked: ops.deadline" in caplog.text
