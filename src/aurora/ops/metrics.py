"""Prometheus metrics in the text exposition format, for node exporter's textfile collector.

`render_metrics` is pure: it describes the latest run of each command (from the history),
data freshness and the number of open alerts. `write_metrics` replaces
`data/metrics/aurora.prom` atomically (the collector never reads a partial file). Point the
collector at the directory: `node_exporter --collector.textfile.directory=DATA/metrics`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

from aurora.atomic import atomic_write_text
from aurora.ops.freshness import Freshness
from aurora.ops.history import History, RunRecord

METRICS_FILE = Path("metrics") / "aurora.prom"

_HELP = {
    "aurora_run_success": ("gauge", "1 if the latest run of the command succeeded, else 0."),
    "aurora_run_timestamp_seconds": ("gauge", "Unix time the latest run of the command ended."),
    "aurora_run_duration_seconds": ("gauge", "Wall time of the latest run of the command."),
    "aurora_stage_duration_seconds": ("gauge", "Wall time of each stage of the latest run."),
    "aurora_peak_memory_bytes": ("gauge", "Peak resident memory of the latest run."),
    "aurora_rows_total": ("gauge", "Rows processed by the latest run of the command."),
    "aurora_symbols_total": ("gauge", "Symbols processed by the latest run of the command."),
    "aurora_requests_total": ("gauge", "HTTP requests made by the latest run of the command."),
    "aurora_retries_total": ("gauge", "Retried requests in the latest run of the command."),
    "aurora_coverage_ratio": ("gauge", "Symbols delivered / symbols expected, latest run."),
    "aurora_quality_failures": ("gauge", "Failed quality gates in the latest run."),
    "aurora_latest_session_age_sessions": (
        "gauge", "Sessions between the latest stored session and the last completed one."),
    "aurora_data_stale": ("gauge", "1 if the latest session is missing past its deadline."),
    "aurora_open_alerts": ("gauge", "Alerts not yet acknowledged or resolved."),
}


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    inner = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
    return "{" + inner + "}" if inner else ""


def _num(value: float | int) -> str:
    return repr(float(value)) if isinstance(value, float) else str(int(value))


def render_metrics(runs: Iterable[RunRecord], freshness: Freshness | None,
                   open_alerts: int) -> str:
    """The exposition text: HELP/TYPE once per metric, then its samples."""
    samples: dict[str, list[str]] = {name: [] for name in _HELP}

    def add(name: str, value: float | int, **labels: str) -> None:
        samples[name].append(f"{name}{_labels(**labels)} {_num(value)}")

    for run in runs:
        cmd = run.command
        ended = dt.datetime.fromisoformat(run.ended_at).timestamp()
        add("aurora_run_success", int(run.success), command=cmd)
        add("aurora_run_timestamp_seconds", round(ended, 3), command=cmd)
        add("aurora_run_duration_seconds", round(run.duration_seconds, 3), command=cmd)
        for stage in run.stages:
            add("aurora_stage_duration_seconds", round(stage.seconds, 3), command=cmd,
                stage=stage.name)
        if run.peak_rss_bytes is not None:
            add("aurora_peak_memory_bytes", run.peak_rss_bytes, command=cmd)
        add("aurora_rows_total", run.rows, command=cmd)
        add("aurora_symbols_total", run.symbols, command=cmd)
        add("aurora_requests_total", run.requests, command=cmd)
        add("aurora_retries_total", run.retries, command=cmd)
        if run.coverage is not None:
            add("aurora_coverage_ratio", round(run.coverage, 6), command=cmd)
        add("aurora_quality_failures", sum(not q.ok for q in run.quality), command=cmd)
    if freshness is not None:
        if freshness.latest_session is not None:
            add("aurora_latest_session_age_sessions", freshness.sessions_behind)
        add("aurora_data_stale", int(freshness.stale))
    add("aurora_open_alerts", open_alerts)
    lines = []
    for name, (kind, text) in _HELP.items():
        if samples[name]:
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", *samples[name]]
    return "\n".join(lines) + "\n"


def write_metrics(data_dir: Path, history: History, freshness: Freshness | None) -> Path:
    """Render from `history` and atomically replace `data_dir/metrics/aurora.prom`."""
    text = render_metrics(history.latest_run_per_command(), freshness,
                          len(history.alerts("open", limit=10_000)))
    path = Path(data_dir) / METRICS_FILE
    atomic_write_text(path, text, mode=0o644)
    return path
