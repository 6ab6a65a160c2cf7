import datetime as dt

from ops_helpers import Receiver

from aurora.config import AuroraConfig, OpsConfig
from aurora.ops import alerts
from aurora.ops.freshness import Freshness
from aurora.ops.history import History, QualityResult, RunRecord, StageRecord

NO_SLEEP = lambda _seconds: None  # noqa: E731


def _run(**kw) -> RunRecord:
    base = dict(id="r1", command="run", started_at="2026-01-01T00:00:00+00:00",
                ended_at="2026-01-01T00:01:00+00:00", duration_seconds=60.0, success=True,
                exit_code=0)
    base.update(kw)
    return RunRecord(**base)


def test_failed_run_and_healthy_run():
    assert alerts.rule_failed_run(_run()) == []
    [alert] = alerts.rule_failed_run(_run(success=False, exit_code=5, error="gate failed"))
    assert alert.severity == "critical" and "exit 5" in alert.message and "gate failed" in \
        alert.message


def test_a_failed_run_raises_one_alert_that_carries_its_coverage_and_gates(data_dir):
    run = _run(success=False, exit_code=5, error="fetched prices failed validation",
               coverage=0.5, details={"missing_symbols": ["BBB"]},
               quality=[QualityResult("fetch validation", False, ["missing BBB"])])
    [alert] = alerts.evaluate_rules(run, History(data_dir), None, AuroraConfig())
    assert alert.rule == "failed_run" and "coverage 50.0%, 1 symbol(s): BBB" in alert.message
    assert alert.details == {"exit_code": 5, "coverage": 0.5, "missing_symbols": ["BBB"],
                             "failed_gates": ["fetch validation"]}


def test_coverage_names_missing_symbols():
    assert alerts.rule_coverage(_run(coverage=1.0)) == []
    assert alerts.rule_coverage(_run(coverage=None)) == []
    [alert] = alerts.rule_coverage(_run(coverage=129 / 130,
                                        details={"missing_symbols": ["ZZZ"]}))
    assert "99.2%" in alert.message and "ZZZ" in alert.message
    assert alert.details["missing_symbols"] == ["ZZZ"]


def test_quality_gate():
    run = _run(quality=[QualityResult("prices", True), QualityResult("features", False,
                                                                      ["a", "b"])])
    [alert] = alerts.rule_quality(run)
    assert alert.message == "quality gate features failed: a (+1 more)"


def test_slow_stage_needs_history_and_a_real_duration():
    run = _run(stages=[StageRecord("build", "t", 7.0, None, True),
                       StageRecord("fetch", "t", 5.0, None, True),
                       StageRecord("predict", "t", 0.9, None, True)])
    medians = {"build": (2.0, 3), "fetch": (2.0, 3), "predict": (0.1, 5)}
    [alert] = alerts.rule_slow_stages(run, medians, factor=3.0)
    assert alert.details["stage"] == "build" and "3.5x" in alert.message
    assert alerts.rule_slow_stages(run, {"build": (2.0, 2)}, factor=3.0) == []


def test_stale_rule_keys_on_the_due_session():
    now = dt.datetime(2024, 3, 15, 22, tzinfo=dt.UTC)
    fresh = Freshness(now, dt.date(2024, 3, 14), dt.date(2024, 3, 15), dt.date(2024, 3, 15),
                      now, 1, True, False)
    [alert] = alerts.rule_stale(fresh)
    assert alert.key == "stale_data:2024-03-15"
    assert alerts.rule_stale(None) == []


def test_webhook_retries_server_errors(receiver: Receiver):
    receiver.fail_first = 2
    sleeps: list[float] = []
    result = alerts.post_webhook(receiver.url(), {"text": "hi"}, retries=3,
                                 backoff_seconds=0.25, sleep=sleeps.append)
    assert result.delivered and result.attempts == 3
    assert sleeps == [0.25, 0.5]
    assert receiver.posts == [{"text": "hi"}]


def test_webhook_gives_up_on_client_error_without_leaking_the_url(receiver: Receiver):
    receiver.fail_first, receiver.fail_status = 5, 404
    result = alerts.post_webhook(receiver.url(), {"text": "x"}, retries=3, sleep=NO_SLEEP)
    assert not result.delivered and result.attempts == 1
    assert result.error and "HTTP 404" in result.error and "token" not in result.error


def test_webhook_backoff_doubles_is_capped_and_bounded(receiver: Receiver):
    receiver.fail_first, receiver.fail_status = 10, 503
    sleeps: list[float] = []
    result = alerts.post_webhook(receiver.url(), {"text": "x"}, retries=5, backoff_seconds=4.0,
                                 sleep=sleeps.append)
    assert sleeps == [4.0, 8.0, 16.0, 30.0, 30.0]
    assert not result.delivered and result.attempts == 6 and len(receiver.paths) == 6
    assert result.error and result.error.startswith("HTTP 503 from ")
    assert "token" not in result.error


def test_webhook_retries_429(receiver: Receiver):
    receiver.fail_first, receiver.fail_status = 1, 429
    sleeps: list[float] = []
    result = alerts.post_webhook(receiver.url(), {"text": "x"}, sleep=sleeps.append)
    assert result == alerts.Delivery(True, 2) and sleeps == [0.5]


def test_webhook_unreachable():
    result = alerts.post_webhook("http://127.0.0.1:9/hooks/token-abc", {"text": "x"},
                                 retries=2, sleep=NO_SLEEP, timeout_seconds=1)
    assert not result.delivered and result.attempts == 3
    assert "token-abc" not in (result.error or "") and "ConnectError" in (result.error or "")


def test_raise_alerts_logs_stores_posts_and_dedups(data_dir, receiver: Receiver, caplog):
    cfg = AuroraConfig(ops=OpsConfig(webhook_url=receiver.url()))
    history = History(data_dir)
    run = _run(coverage=0.5, details={"missing_symbols": ["BBB"]}, success=False, exit_code=6,
               error="fetch failed")
    found = alerts.evaluate_rules(run, history, None, cfg)
    assert {a.rule for a in found} == {"failed_run"}
    found += alerts.rule_coverage(_run(id="r2", coverage=0.5,
                                       details={"missing_symbols": ["CCC"]}))
    with caplog.at_level("INFO", logger="aurora.ops.alerts"):
        raised = alerts.raise_alerts(found, history, cfg, run.id, sleep=NO_SLEEP)
    assert len(raised) == 2 and all(d and d.delivered for _, _, d in raised)
    texts = sorted(p["text"] for p in receiver.posts)
    assert any("BBB" in t for t in texts) and any("CCC" in t for t in texts)
    assert all(t.startswith(":rotating_light:") for t in texts)
    assert {p["alert"]["rule"] for p in receiver.posts} == {"coverage", "failed_run"}
    assert all(p["alert"]["run_id"] == "r1" for p in receiver.posts)
    assert "coverage 50.0%" in caplog.text and "token-s3cr3t" not in caplog.text
    stored = history.alerts()
    assert len(stored) == 2 and all(a.delivered for a in stored)
    # Same keys again: nothing new is stored or posted.
    assert alerts.raise_alerts(found, history, cfg, run.id, sleep=NO_SLEEP) == []
    assert len(receiver.posts) == 2


def test_alert_text_is_redacted(data_dir):
    cfg = AuroraConfig(ops=OpsConfig(webhook_url="http://127.0.0.1:9/x"))
    history = History(data_dir)
    found = alerts.rule_failed_run(_run(success=False, exit_code=1, error="key hunter2xyz"))
    alerts.raise_alerts(found, history, cfg, "r1", ("hunter2xyz",), sleep=NO_SLEEP)
    [stored] = history.alerts()
    assert "hunter2xyz" not in stored.message and "***" in stored.message
    assert stored.delivered is False and "127.0.0.1:9/x" not in (stored.delivery_error or "")


def test_slow_factor_from_config(data_dir):
    history = History(data_dir)
    for i in range(3):
        history.record_run(_run(id=f"p{i}", started_at=f"2026-01-0{i + 1}T00:00:00",
                                stages=[StageRecord("build", f"2026-01-0{i + 1}", 2.0, None,
                                                    True)]))
    run = _run(id="now", stages=[StageRecord("build", "2026-01-09", 5.0, None, True)])
    assert alerts.evaluate_rules(run, history, None, AuroraConfig()) == []
    cfg = AuroraConfig(ops=OpsConfig(slow_factor=2.0))
    assert [a.rule for a in alerts.evaluate_rules(run, history, None, cfg)] == ["slow_stage"]


def test_alerts_name_the_report_the_run_published():
    from aurora.ops.alerts import Alert, alert_payload, naming_report

    alert = Alert("decay", "warning", "rank IC fell", "decay", {"window": 20})
    assert naming_report([alert], None) == [alert]
    [named] = naming_report([alert], "/data/archive/v2/report.html")
    assert named.details == {"window": 20, "report": "/data/archive/v2/report.html"}
    payload = alert_payload(named, "run1", 7)
    assert payload["text"].endswith("rank IC fell (report: /data/archive/v2/report.html)")
    assert payload["alert"]["details"]["report"] == "/data/archive/v2/report.html"
    assert "report" not in alert_payload(alert, "run1")["text"]
