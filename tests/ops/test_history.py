import os
import stat

from aurora.ops.history import History, QualityResult, RunRecord, StageRecord


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
