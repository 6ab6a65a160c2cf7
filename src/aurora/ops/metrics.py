"""Prometheus metrics in the text exposition format, for node exporter's textfile collector.

`render_metrics` is pure: it describes the latest run of each command (from the history),
data freshness and the number of open alerts, as `prometheus_client` gauges in a registry of
its own (never the global one), rendered by `prometheus_client.generate_latest`. A metric
with no sample is left out entirely. `write_metrics` replaces `data/metrics/aurora.prom`
atomically (the collector never reads a partial file). Point the collector at the
directory: `node_exporter --collector.textfile.directory=DATA/metrics`.

The metrics hold no secret and are meant for the collector, which often runs as another
user: `metrics/` is created 0755 and `aurora.prom` written 0644 whatever the umask (the data
directory itself is created owner-only; make it traversable, `chmod o+x DATA`, for a
collector running as another user).

When the run history cannot be read (`HistoryUnavailable`), `write_metrics` still writes
what it knows: the current run (`current`), freshness, and `aurora_history_available 0`;
other commands' runs and the open-alert count are left out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from aurora.atomic import atomic_write_text, private_dir
from aurora.errors import StoreError
from aurora.ops.freshness import Freshness
from aurora.ops.history import History, RunRecord

METRICS_FILE = Path("metrics") / "aurora.prom"
METRICS_DIR_MODE = 0o755  # read by node exporter, often another user; no secrets inside
METRICS_FILE_MODE = 0o644

_RUN = ("command",)
_STAGE = ("command", "stage")

# name -> (help text, label names); every metric is a gauge, rendered in this order.
_GAUGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "aurora_run_success": ("1 if the latest run of the command succeeded, else 0.", _RUN),
    "aurora_run_timestamp_seconds": ("Unix time the latest run of the command ended.", _RUN),
    "aurora_run_duration_seconds": ("Wall time of the latest run of the command.", _RUN),
    "aurora_stage_duration_seconds": ("Wall time of each stage of the latest run.", _STAGE),
    "aurora_peak_memory_bytes": ("Peak resident memory of the latest run.", _RUN),
    "aurora_rows_total": ("Rows processed by the latest run of the command.", _RUN),
    "aurora_symbols_total": ("Symbols processed by the latest run of the command.", _RUN),
    "aurora_requests_total": ("HTTP requests made by the latest run of the command.", _RUN),
    "aurora_retries_total": ("Retried requests in the latest run of the command.", _RUN),
    "aurora_coverage_ratio": ("Symbols delivered / symbols expected, latest run.", _RUN),
    "aurora_quality_failures": ("Failed quality gates in the latest run.", _RUN),
    "aurora_latest_session_age_sessions": (
        "Sessions between the latest stored session and the last completed one.", ()),
    "aurora_data_stale": ("1 if the latest session is missing past its deadline.", ()),
    "aurora_open_alerts": ("Alerts not yet acknowledged or resolved.", ()),
    "aurora_history_available": ("1 if the run-history database aurora.db is usable.", ()),
}

_Sample = tuple[tuple[str, ...], float]


def render_metrics(runs: Iterable[RunRecord], freshness: Freshness | None,
                   open_alerts: int | None, history_available: bool = True) -> str:
    """The exposition text: HELP/TYPE once per metric that has samples, then its samples.

    `open_alerts` None: unknown (no history), left out."""
    samples: dict[str, list[_Sample]] = {name: [] for name in _GAUGES}

    def add(name: str, value: float, *labels: str) -> None:
        samples[name].append((labels, float(value)))

    for run in runs:
        cmd = run.command
        ended = dt.datetime.fromisoformat(run.ended_at).timestamp()
        add("aurora_run_success", int(run.success), cmd)
        add("aurora_run_timestamp_seconds", round(ended, 3), cmd)
        add("aurora_run_duration_seconds", round(run.duration_seconds, 3), cmd)
        for stage in run.stages:
            add("aurora_stage_duration_seconds", round(stage.seconds, 3), cmd, stage.name)
        if run.peak_rss_bytes is not None:
            add("aurora_peak_memory_bytes", run.peak_rss_bytes, cmd)
        add("aurora_rows_total", run.rows, cmd)
        add("aurora_symbols_total", run.symbols, cmd)
        add("aurora_requests_total", run.requests, cmd)
        add("aurora_retries_total", run.retries, cmd)
        if run.coverage is not None:
            add("aurora_coverage_ratio", round(run.coverage, 6), cmd)
        add("aurora_quality_failures", sum(not q.ok for q in run.quality), cmd)
    if freshness is not None:
        if freshness.latest_session is not None:
            add("aurora_latest_session_age_sessions", freshness.sessions_behind)
        add("aurora_data_stale", int(freshness.stale))
    if open_alerts is not None:
        add("aurora_open_alerts", open_alerts)
    add("aurora_history_available", int(history_available))

    registry = CollectorRegistry(auto_describe=False)
    for name, (text, labelnames) in _GAUGES.items():
        if not samples[name]:
            continue
        gauge = Gauge(name, text, labelnames, registry=registry)
        for labels, value in samples[name]:
            (gauge.labels(*labels) if labels else gauge).set(value)
    return generate_latest(registry).decode("utf-8")


def write_metrics(data_dir: Path, history: History | None, freshness: Freshness | None, *,
                  current: RunRecord | None = None) -> Path:
    """Render from `history` and atomically replace `data_dir/metrics/aurora.prom`.

    With no usable history (None, or StoreError reading it) the file describes `current`
    only (when given), freshness, and `aurora_history_available 0`.
    """
    runs: list[RunRecord] = [current] if current is not None else []
    open_alerts: int | None = None
    available = False
    if history is not None:
        try:
            runs = history.latest_run_per_command()
            open_alerts = len(history.alerts("open", limit=10_000))
            available = True
        except StoreError:
            runs = [current] if current is not None else []
    text = render_metrics(runs, freshness, open_alerts, history_available=available)
    path = Path(data_dir) / METRICS_FILE
    private_dir(Path(data_dir))
    private_dir(path.parent, METRICS_DIR_MODE)
    atomic_write_text(path, text, mode=METRICS_FILE_MODE)
    return path
