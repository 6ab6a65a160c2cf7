import datetime as dt
import re

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

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
    assert 'aurora_run_success{command="backup"} 0.0' in lines
    assert 'aurora_rows_total{command="run"} 1000.0' in lines
    assert 'aurora_retries_total{command="run"} 2.0' in lines
    assert 'aurora_quality_failures{command="run"} 1.0' in lines
    assert "aurora_latest_session_age_sessions 2.0" in lines
    assert "aurora_data_stale 1.0" in lines and "aurora_open_alerts 3.0" in lines
    assert text.count("# TYPE aurora_run_success gauge") == 1
    assert 'aurora_run_timestamp_seconds{command="run"} 1.76722566e+09' in lines
    assert "# HELP aurora_open_alerts Alerts not yet acknowledged or resolved." in lines


def test_render_parses_back_to_the_values():
    now = dt.datetime(2024, 3, 15, 22, tzinfo=dt.UTC)
    fresh = Freshness(now, dt.date(2024, 3, 13), dt.date(2024, 3, 15), dt.date(2024, 3, 15),
                      now, 2, True, False)
    text = render_metrics([_run(), _run("backup", success=False)], fresh, open_alerts=3)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert all(f.type == "gauge" for f in families.values())
    assert "aurora_rows_total" in families  # a gauge keeps its name, no suffix handling
    values = {(s.name, tuple(sorted(s.labels.items()))): s.value
              for f in families.values() for s in f.samples}
    run = (("command", "run"),)
    assert values[("aurora_run_success", run)] == 1.0
    assert values[("aurora_run_success", (("command", "backup"),))] == 0.0
    assert values[("aurora_run_timestamp_seconds", run)] == 1767225660.0
    assert values[("aurora_run_duration_seconds", run)] == 60.25
    assert values[("aurora_stage_duration_seconds",
                   (("command", "run"), ("stage", 'we"ird')))] == 2.0
    assert values[("aurora_peak_memory_bytes", run)] == 123456.0
    assert values[("aurora_symbols_total", run)] == 130.0
    assert values[("aurora_requests_total", run)] == 7.0
    assert values[("aurora_coverage_ratio", run)] == 0.5
    assert values[("aurora_quality_failures", run)] == 1.0
    assert values[("aurora_latest_session_age_sessions", ())] == 2.0
    assert values[("aurora_data_stale", ())] == 1.0
    assert values[("aurora_open_alerts", ())] == 3.0
    assert families["aurora_data_stale"].documentation == (
        "1 if the latest session is missing past its deadline.")
    # each render has a registry of its own: nothing lands in the process-wide one
    assert REGISTRY.get_sample_value("aurora_open_alerts") is None


def test_metrics_without_samples_are_left_out():
    text = render_metrics([], None, open_alerts=0)
    assert [f.name for f in text_string_to_metric_families(text)] == [
        "aurora_open_alerts", "aurora_history_available"]
    assert "aurora_run_success" not in text and "aurora_data_stale" not in text
    unknown = render_metrics([], None, open_alerts=None, history_available=False)
    assert [(f.name, f.samples[0].value) for f in text_string_to_metric_families(unknown)] == [
        ("aurora_history_available", 0.0)]


def test_write_metrics_from_history(data_dir):
    history = History(data_dir)
    history.record_run(_run())
    path = write_metrics(data_dir, history, None)
    assert path == data_dir / "metrics" / "aurora.prom"
    text = path.read_text()
    assert 'aurora_symbols_total{command="run"} 130.0' in text
    assert "aurora_data_stale" not in text and "aurora_open_alerts 0.0" in text
    assert [p.name for p in path.parent.iterdir()] == ["aurora.prom"]
