import datetime as dt
import re

from aurora.ops.freshness import Freshness
from aurora.ops.history import History, QualityResult, RunRecord, StageRecord
from aurora.ops.metrics import render_metrics, write_metrics

SAMPLE = re.compile(r'^[a-z_]+(\{[a-z_]+="(?:[^"\\]|\\.)*"(,[a-z_]+="(?:[^"\\]|\\.)*")*\})? '
                    r"-?[0-9.e+-]+$")


def _run(command="run", success=True) -> RunRecord:
    return RunRecord(
        id="r1", command=command, started_at="2026-01-01T00:00:00+00:00",
        ended_at="2026-01-01T00:01:00+00:00", duration_seconds=60.25, success=success,
        exit_code=0, peak_rss_bytes=123456, rows=1000, symbols=130, requests=7, retries=2,
        coverage=0.5, stages=[StageRecord("fetch", "t", 1.5, 1, True),
                              StageRecord('we"ird', "t", 2.0, 1, True)],
        quality=[QualityResult("prices", True), QualityResult("features", False)],
    )


def test_render_is_valid_exposition_text():
    now = dt.datetime(2024, 3, 15, 22, tzinfo=dt.UTC)
    fresh = Freshness(now, dt.date(2024, 3, 13), dt.date(2024, 3, 15), dt.date(2024, 3, 15),
                      now, 2, True, False)
    text = render_metrics([_run(), _run("backup", success=False)], fresh, open_alerts=3)
    lines = text.splitlines()
    for line in lines:
        assert line.startswith("# ") or SAMPLE.match(line), line
    assert 'aurora_stage_duration_seconds{command="run",stage="fetch"} 1.5' in lines
    assert 'aurora_stage_duration_seconds{command="run",stage="we\\"ird"} 2.0' in lines
    assert 'aurora_run_success{command="backup"} 0' in lines
    assert 'aurora_rows_total{command="run"} 1000' in lines
    assert 'aurora_retries_total{command="run"} 2' in lines
    assert 'aurora_quality_failures{command="run"} 1' in lines
    assert "aurora_latest_session_age_sessions 2" in lines
    assert "aurora_data_stale 1" in lines and "aurora_open_alerts 3" in lines
    assert text.count("# TYPE aurora_run_success gauge") == 1
    assert 'aurora_run_timestamp_seconds{command="run"} 1767225660.0' in lines


def test_write_metrics_from_history(data_dir):
    history = History(data_dir)
    history.record_run(_run())
    path = write_metrics(data_dir, history, None)
    assert path == data_dir / "metrics" / "aurora.prom"
    text = path.read_text()
    assert 'aurora_symbols_total{command="run"} 130' in text
    assert "aurora_data_stale" not in text and "aurora_open_alerts 0" in text
    assert [p.name for p in path.parent.iterdir()] == ["aurora.prom"]
