"""RunContext: what one command did, recorded when it ends.

    with run_context(store, config, command="fetch") as run:
        with run.stage("fetch"):
            report = fetch_prices(config)
            run.add(requests=report.requests, retries=report.retries)
        run.record_coverage(expected=universe.symbols, delivered=report.symbols)

On exit, whatever the outcome (the exception, if any, propagates unchanged):
1. the run (stage timings, peak memory, counters, quality results, coverage, redacted
   error) is written to the history database `data/aurora.db`;
2. freshness is checked and alert rules are evaluated: alerts are logged, stored and posted;
3. Prometheus metrics are rewritten (`data/metrics/aurora.prom`);
4. the run is attached to the CLI command's audit entry, or, outside the CLI, an audit line
   of its own is appended.
A failure of this bookkeeping is logged and never replaces the command's own outcome.

Peak memory is the process's peak resident set size so far (`getrusage`), read at the end
of each stage and of the run: a high-water mark, not a per-stage delta.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import resource
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aurora.atomic import atomic_write_json
from aurora.config import AuroraConfig
from aurora.errors import AuroraError
from aurora.ops import alerts as alert_rules
from aurora.ops.audit import AuditEntry, AuditLog, current_entry, snapshot
from aurora.ops.freshness import Freshness, check_freshness
from aurora.ops.history import History, QualityResult, RunRecord, StageRecord, utc_now_iso
from aurora.ops.metrics import write_metrics
from aurora.redaction import redact, secret_values
from aurora.store import Store

log = logging.getLogger("aurora.ops.runner")

_COUNTERS = ("rows", "symbols", "requests", "retries")


def peak_rss_bytes() -> int:
    """The process's peak resident set size in bytes."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def describe_error(exc: BaseException, secrets: Sequence[str]) -> tuple[str, int]:
    """(one-line redacted message, exit code) for an exception ending a run."""
    if isinstance(exc, AuroraError):
        message, code = str(exc), exc.exit_code
    elif isinstance(exc, KeyboardInterrupt):
        message, code = "interrupted", 130
    else:
        message, code = f"{type(exc).__name__}: {exc}", 1
    first_line = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
    return redact(first_line, secrets)[:500], code


RUNNING = "running.json"  # under state/: the stage in progress (see RunContext.stage)


@dataclass
class RunContext:
    """Collects what a run does. Create it with `run_context`, not directly."""

    store: Store
    config: AuroraConfig
    command: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    started_at: str = field(default_factory=utc_now_iso)
    stages: list[StageRecord] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_COUNTERS, 0))
    quality: list[QualityResult] = field(default_factory=list)
    coverage: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    alerts: list[alert_rules.Alert] = field(default_factory=list)
    record: RunRecord | None = None
    freshness: Freshness | None = None

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage; it is recorded as failed if the block raises.

        While it runs, `state/running.json` names the process, command and stage (what a
        scheduler or `aurora status` can show; a killed run leaves it behind, stale).
        """
        started, t0, ok = utc_now_iso(), time.perf_counter(), False
        with contextlib.suppress(OSError):
            atomic_write_json(self.store.state_dir / RUNNING, {
                "pid": os.getpid(), "command": self.command, "stage": name,
                "started_at": started})
        try:
            yield
            ok = True
        finally:
            self.stages.append(StageRecord(name, started, time.perf_counter() - t0,
                                           peak_rss_bytes(), ok))

    def add(self, **counts: int) -> None:
        """Add to counters: rows, symbols, requests, retries (others go to details)."""
        for key, value in counts.items():
            if key in self.counters:
                self.counters[key] += int(value)
            else:
                extra = self.details.setdefault("counters", {})
                extra[key] = extra.get(key, 0) + int(value)

    def set_detail(self, **values: Any) -> None:
        """Attach JSON-able details to the run record (never secrets)."""
        self.details.update(values)

    def record_quality(self, name: str, ok: bool, errors: Iterable[str] = (),
                       warnings: Iterable[str] = ()) -> None:
        """Record a validation or quality-gate result."""
        secrets = secret_values(self.config)
        self.quality.append(QualityResult(name, bool(ok),
                                          [redact(str(e), secrets) for e in errors],
                                          [redact(str(w), secrets) for w in warnings]))

    def record_coverage(self, expected: Iterable[str], delivered: Iterable[str]) -> float:
        """Coverage = delivered / expected symbols; the missing ones go to the details."""
        wanted = list(dict.fromkeys(expected))
        got = set(delivered)
        missing = [s for s in wanted if s not in got]
        self.coverage = (len(wanted) - len(missing)) / len(wanted) if wanted else 1.0
        self.details["missing_symbols"] = missing
        return self.coverage

    def note_read(self, path: Path) -> None:
        """Tell the audit log this run read `path` (hashed now)."""
        entry = current_entry()
        if entry is not None:
            entry.note_read(path)
        else:
            self.details.setdefault("_read", []).append(str(path))

    def stage_seconds(self) -> dict[str, float]:
        return {s.name: s.seconds for s in self.stages}


@contextlib.contextmanager
def run_context(store: Store, config: AuroraConfig, command: str, *,
                now: Callable[[], dt.datetime] | None = None,
                sleep: Callable[[float], None] = time.sleep) -> Iterator[RunContext]:
    """Record a run of `command` against `store`; see the module docstring.

    `now` (for freshness) and `sleep` (webhook backoff) are injectable for tests.
    """
    store.root.mkdir(parents=True, exist_ok=True)
    run = RunContext(store, config, command)
    before = snapshot(store)
    t0 = time.perf_counter()
    error: BaseException | None = None
    try:
        yield run
    except BaseException as exc:
        error = exc
        raise
    finally:
        secrets = secret_values(config)
        message, code = describe_error(error, secrets) if error is not None else (None, 0)
        after = snapshot(store)
        run.record = RunRecord(
            id=run.id, command=command, started_at=run.started_at, ended_at=utc_now_iso(),
            duration_seconds=time.perf_counter() - t0, success=error is None, exit_code=code,
            error=message, peak_rss_bytes=peak_rss_bytes(), coverage=run.coverage,
            version_before=before.version, version_after=after.version, stages=run.stages,
            quality=run.quality, details={k: v for k, v in run.details.items()
                                          if not k.startswith("_")},
            **run.counters,
        )
        with contextlib.suppress(OSError):
            (store.state_dir / RUNNING).unlink(missing_ok=True)
        try:
            _finish(run, run.record, before, after, secrets, now, sleep)
        except Exception as exc:  # bookkeeping must never mask the command's outcome
            log.warning("run bookkeeping failed: %s", redact(f"{type(exc).__name__}: {exc}",
                                                              secrets))


def _finish(run: RunContext, record: RunRecord, before: Any, after: Any,
            secrets: tuple[str, ...], now: Callable[[], dt.datetime] | None,
            sleep: Callable[[float], None], audit: bool = True) -> None:
    store, config = run.store, run.config
    history = History(store.root)
    history.record_run(record)
    try:
        run.freshness = check_freshness(store, config, now() if now else None)
    except AuroraError as exc:
        log.warning("freshness not checked: %s", redact(str(exc), secrets))
    if run.freshness is not None and not run.freshness.stale:
        history.close_alerts(status="resolved", rule="stale_data")
    raised = alert_rules.raise_alerts(
        alert_rules.evaluate_rules(record, history, run.freshness, config),
        history, config, record.id, secrets, sleep=sleep)
    run.alerts = [alert for _, alert, _ in raised]
    write_metrics(store.root, history, run.freshness)
    entry = current_entry()
    if not audit:
        return
    if entry is not None:
        entry.runs.append(record.id)
    else:
        audit = AuditEntry(command=record.command, argv=[])
        for path in run.details.get("_read", []):
            with contextlib.suppress(OSError):
                audit.note_read(path)
        audit.runs.append(record.id)
        AuditLog(store.root).append(audit.record(
            outcome="ok" if record.success else "error", exit_code=record.exit_code,
            error=record.error, before=before, after=after, store=store, secrets=secrets))


def record_command_run(store: Store, config: AuroraConfig, command: str, *, started_at: str,
                       seconds: float, exit_code: int, error: str | None,
                       before: Any, after: Any) -> RunRecord:
    """Record a CLI command that did not open a `run_context` itself (outcome and timing only).

    Used by the audit wrapper so that every stage command appears in the run history, raises
    the failed-run alert and updates the metrics. The audit line is written by the caller.
    """
    secrets = secret_values(config)
    record = RunRecord(
        id=uuid.uuid4().hex[:16], command=command, started_at=started_at,
        ended_at=utc_now_iso(), duration_seconds=seconds, success=exit_code == 0,
        exit_code=exit_code, error=error and redact(error, secrets)[:500],
        peak_rss_bytes=peak_rss_bytes(), version_before=before.version,
        version_after=after.version,
        stages=[StageRecord(command, started_at, seconds, peak_rss_bytes(), exit_code == 0)],
    )
    run = RunContext(store, config, command, id=record.id, started_at=started_at)
    try:
        _finish(run, record, before, after, secrets, None, time.sleep, audit=False)
    except Exception as exc:
        log.warning("run bookkeeping failed: %s", redact(f"{type(exc).__name__}: {exc}",
                                                          secrets))
    return record
