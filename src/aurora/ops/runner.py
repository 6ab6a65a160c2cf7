"""RunContext: what one command did, recorded when it ends. The one place a run is recorded.

    with run_context(store, config, command="fetch", argv=argv) as run:
        run.note_read(universe_file)
        with run.stage("fetch"):
            report = fetch_prices(config)
            run.add(requests=report.requests, retries=report.retries)
        run.record_coverage(expected=universe.symbols, delivered=report.symbols)

The CLI opens one for every command; `aurora.ops.pipeline.run_pipeline` opens one only when
its caller (a notebook) did not pass one. On exit, whatever the outcome (the exception, if
any, propagates unchanged):
1. the run (stage timings, peak memory, counters, quality results, coverage, universe,
   redacted error) is written to the history database `data/aurora.db`;
2. freshness is checked and alert rules are evaluated: alerts are logged, stored and posted;
3. Prometheus metrics are rewritten (`data/metrics/aurora.prom`);
4. one audit line is appended (`aurora.ops.audit`).
Read-only commands (`history=False`, e.g. `aurora status`) skip 1-3 and are only audited.
A failure of this bookkeeping is logged and never replaces the command's own outcome.

Monitoring does not depend on the history database: when `aurora.db` cannot be read or
written (`HistoryUnavailable`, a newer schema, ...), the rules that need no history
(failed run, coverage, quality, staleness) are still evaluated and posted to the webhook,
one more critical alert, `history_unavailable`, names the file and the SQLite error, and
the metrics file describes this run, freshness and `aurora_history_available 0`.

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
from aurora.errors import AuroraError, StoreError
from aurora.ops import alerts as alert_rules
from aurora.ops.audit import AuditLog, audit_record, file_digest, snapshot
from aurora.ops.freshness import Freshness, check_freshness
from aurora.ops.history import History, QualityResult, RunRecord, StageRecord, utc_now_iso
from aurora.ops.metrics import write_metrics
from aurora.redaction import redact, secret_values
from aurora.store import Store
from aurora.store.datadir import ensure_data_dir
from aurora.universe import Universe

log = logging.getLogger("aurora.ops.runner")

_COUNTERS = ("rows", "symbols", "requests", "retries")
RUNNING = "running.json"  # under state/: the stage in progress (see RunContext.stage)


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
    universe: Universe | None = None
    details: dict[str, Any] = field(default_factory=dict)
    read: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[alert_rules.Alert] = field(default_factory=list)
    stage_alerts: list[alert_rules.Alert] = field(default_factory=list)  # raised at the end
    record: RunRecord | None = None
    freshness: Freshness | None = None
    history_error: str | None = None  # why the run could not be recorded in aurora.db
    report: Path | None = None  # the report this run published: named in its alerts

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

    def alert(self, alerts: Iterable[alert_rules.Alert]) -> None:
        """Alerts a stage found (tracking's `decay`, ...): raised with the run's own when it
        ends, through the same channel."""
        self.stage_alerts.extend(alerts)

    def alert_now(self, alert: alert_rules.Alert) -> None:
        """Raise `alert` at once through the run's channel (log, history, webhook): what a
        long-running command (`aurora stream`) finds cannot wait for the run's end. An
        alert already open under the same key is not raised again."""
        history: History | None = None
        with contextlib.suppress(StoreError):
            history = History(self.store.root)
        alert_rules.raise_alerts([alert], history, self.config, self.id,
                                 secret_values(self.config))

    def set_detail(self, **values: Any) -> None:
        """Attach JSON-able details to the run record (never secrets)."""
        self.details.update(values)

    def use_universe(self, universe: Universe) -> None:
        """Record which universe (source and size) the run worked on."""
        self.universe = universe

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

    def note_read(self, path: Path | str) -> None:
        """Tell the audit log this run read input file `path` (hashed now)."""
        text = str(path)
        if not any(r["path"] == text for r in self.read):
            self.read.append({"path": text, "sha256": file_digest(Path(path))})

    def stage_seconds(self) -> dict[str, float]:
        return {s.name: s.seconds for s in self.stages}


def _outcome(error: BaseException | None) -> str:
    if error is None:
        return "ok"
    return "error" if isinstance(error, AuroraError | KeyboardInterrupt) else "crashed"


@contextlib.contextmanager
def run_context(store: Store, config: AuroraConfig, command: str, *,
                argv: Sequence[str] = (), history: bool = True,
                now: Callable[[], dt.datetime] | None = None,
                sleep: Callable[[float], None] = time.sleep) -> Iterator[RunContext]:
    """Record a run of `command` against `store`; see the module docstring.

    `argv` is the command line (audited, redacted); `history=False` for read-only
    commands. `now` (for freshness) and `sleep` (webhook backoff) are injectable for tests.
    """
    if history or not store.root.is_dir():  # a read-only command needs no write access
        ensure_data_dir(store.root)  # owner-only whatever the umask; one line when unusable
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
        universe = run.universe
        run.record = RunRecord(
            id=run.id, command=command, started_at=run.started_at, ended_at=utc_now_iso(),
            duration_seconds=time.perf_counter() - t0, success=error is None, exit_code=code,
            error=message, peak_rss_bytes=peak_rss_bytes(), coverage=run.coverage,
            version_before=before.version, version_after=after.version, stages=run.stages,
            quality=run.quality, details=run.details,
            universe_source=universe.source if universe else None,
            universe_symbols=len(universe) if universe else None,
            **run.counters,
        )
        with contextlib.suppress(OSError):
            (store.state_dir / RUNNING).unlink(missing_ok=True)
        try:
            if history:
                _record(run, run.record, secrets, now, sleep)
            AuditLog(store.root).append(audit_record(
                store=store, command=command, argv=argv, started_at=run.started_at,
                seconds=time.perf_counter() - t0, read=run.read,
                runs=[run.id] if history and run.history_error is None else [],
                outcome=_outcome(error), exit_code=code,
                error=message, before=before, after=after, secrets=secrets))
        except Exception as exc:  # bookkeeping must never mask the command's outcome
            log.warning("run bookkeeping failed: %s", redact(f"{type(exc).__name__}: {exc}",
                                                              secrets))


def _record(run: RunContext, record: RunRecord, secrets: tuple[str, ...],
            now: Callable[[], dt.datetime] | None, sleep: Callable[[float], None]) -> None:
    """History row, freshness, alerts and metrics of a finished run.

    The history is optional here: if it cannot be used, everything else still happens
    (see the module docstring).
    """
    store, config = run.store, run.config
    history: History | None = History(store.root)
    problem: str | None = None
    try:
        history.record_run(record)
    except StoreError as exc:
        problem, history = redact(str(exc), secrets), None
        log.warning("run not recorded in the history: %s", problem)
    try:
        run.freshness = check_freshness(store, config, now() if now else None)
    except AuroraError as exc:
        log.warning("freshness not checked: %s", redact(str(exc), secrets))
    alerts: list[alert_rules.Alert] = []
    if history is not None:
        try:
            if run.freshness is not None and not run.freshness.stale:
                history.close_alerts(status="resolved", rule="stale_data")
            alerts = alert_rules.evaluate_rules(record, history, run.freshness, config)
        except StoreError as exc:
            problem, history = redact(str(exc), secrets), None
            log.warning("run history unavailable: %s", problem)
    run.history_error = problem
    if history is None:
        alerts = [*alert_rules.evaluate_rules(record, None, run.freshness, config),
                  *alert_rules.rule_history_unavailable(problem, record)]
    raised = alert_rules.raise_alerts(
        alert_rules.naming_report([*alerts, *run.stage_alerts], run.report), history, config,
        record.id, secrets, sleep=sleep)
    run.alerts = [alert for _, alert, _ in raised]
    write_metrics(store.root, history, run.freshness, current=record)
