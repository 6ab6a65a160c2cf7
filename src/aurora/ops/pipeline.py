"""`run_pipeline`: fetch -> validate -> build -> predict, each stage gated.

Stages, inside one `run_context` (history, metrics, alerts, audit): the caller's, or one
opened here when called without one (a notebook):
1. fetch: `aurora.fetch.fetch_prices` (validates the merged prices itself and publishes
   nothing when they fail);
2. validate: `aurora.validation.validate_store` on the published version; any error stops
   the run before the build (DataValidationError);
3. build: `aurora.features.build_features` (its quality gates publish nothing on failure);
4. predict: `aurora.predict.predict`, which trains point in time, ranks, and runs (or
   reuses) the purged walk-forward evaluation up to the feature date; with `evaluate=True`
   also `aurora.predict.evaluate` over the whole stored history;
5. verify: `validate_store` again over the final version (checksums, predictions schema);
6. track: `aurora.ops.tracking.track` scores the published predictions whose horizon has
   passed; its `decay` and `probable_leakage` alerts are raised with the run's.

Every stage works on one universe, resolved once (`aurora.universe.resolve_universe`).
Coverage (symbols with stored bars and not quarantined / universe symbols) is recorded for
the alerts, with the quarantined symbols and their reasons in the run's details
(`quarantined`, read from the version's quarantine.json), also when fetch refuses to
publish: its error carries the symbols it could not cover.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from aurora import predict as predict_stage
from aurora.cluster import connect
from aurora.config import AuroraConfig
from aurora.errors import AuroraError, DataValidationError, StoreError
from aurora.features import build_features
from aurora.fetch import fetch_prices
from aurora.ops.alerts import Alert
from aurora.ops.history import History
from aurora.ops.runner import RunContext, run_context
from aurora.ops.tracking import track
from aurora.predict.evaluate import summary_lines
from aurora.progress import Progress
from aurora.quarantine import read_quarantine
from aurora.store import Store
from aurora.store.bars import price_paths
from aurora.store.files import PREDICTIONS, REPORT
from aurora.universe import UniverseLike, as_universe, resolve_universe
from aurora.validation import validate_store

log = logging.getLogger("aurora.ops.pipeline")


@dataclass
class PipelineResult:
    """What a pipeline run produced (for the summary and for callers)."""

    command: str
    data_dir: Path
    run_id: str = ""
    version: str | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    fetch_lines: list[str] = field(default_factory=list)
    checks: list[tuple[str, bool, str]] = field(default_factory=list)  # (name, ok, detail)
    files: list[tuple[str, int, str]] = field(default_factory=list)  # (name, bytes, detail)
    top: list[tuple[str, float | None]] = field(default_factory=list)
    decision_date: str | None = None
    evaluation: list[str] = field(default_factory=list)
    tracking: list[str] = field(default_factory=list)
    report: str | None = None
    alerts: list[Alert] = field(default_factory=list)
    coverage: float | None = None
    seconds: float = 0.0

    def summary_lines(self) -> list[str]:
        """A summary a person reads at a glance. No printing."""
        lines = [f"aurora {self.command}: {self.data_dir}/latest -> {self.version}"]
        lines.append("written:")
        width = max([28, *(len(name) for name, _, _ in self.files)])
        lines += [f"  {name:<{width}} {size / 1e6:7.2f} MB  {detail}" for name, size, detail
                  in self.files]
        passed = sum(ok for _, ok, _ in self.checks)
        lines.append(f"checks: {passed}/{len(self.checks)} passed")
        lines += [f"  {'ok ' if ok else 'FAIL'} {name}: {detail}" for name, ok, detail
                  in self.checks]
        timings = " · ".join(f"{k} {v:.1f}s" for k, v in self.stage_seconds.items())
        lines.append(f"timings: {timings} · total {self.seconds:.1f}s")
        if self.top:
            shown = "  ".join(f"{i}. {s}" + (f" ({v:+.4f})" if v is not None else "")
                              for i, (s, v) in enumerate(self.top, start=1))
            lines.append(f"top-ranked for {self.decision_date}: {shown}")
        lines += self.evaluation
        lines += self.tracking
        if self.report:
            lines.append(self.report)
        if self.alerts:
            lines.append(f"alerts ({len(self.alerts)}):")
            lines += [f"  [{a.severity}] {a.message}" for a in self.alerts]
        else:
            lines.append("alerts: none")
        return lines


def _track(run: RunContext, result: PipelineResult, store: Store,
           config: AuroraConfig) -> None:
    """Score the published predictions whose horizon passed; their alerts go with the
    run's. A history that cannot be used skips it (the run reports that already)."""
    try:
        report = track(store, config, History(store.root))
    except StoreError as exc:
        result.tracking = [f"tracking skipped: {exc}"]
        return
    run.alert(report.alerts)
    result.tracking = report.summary_lines(config.track.window)


def _report(run: RunContext, result: PipelineResult, store: Store,
            config: AuroraConfig) -> None:
    """Publish the version's report (`aurora.report`); the run's alerts name it. A report
    that cannot be made, for whatever reason, does not fail a run whose predictions are
    published: the summary says why and a `report_failed` warning is raised."""
    from aurora.report import report  # deferred: plotly's import is not free

    try:
        made = report(store, config)
    except Exception as exc:  # any failure: the published predictions stand
        log.warning("report not written", exc_info=True)
        problem = f"{type(exc).__name__}: {exc}" if not isinstance(exc, AuroraError) \
            else str(exc)
        result.report = f"report not written: {problem}"
        run.alert([Alert("report_failed", "warning", f"report not written: {problem}",
                         "report_failed")])
        return
    assert made.version is not None
    run.report = store.archive / made.version / REPORT
    result.report = f"report: {run.report} ({made.charts} charts)"


@contextmanager
def _stage(run: RunContext, result: PipelineResult, name: str) -> Iterator[None]:
    t0 = time.perf_counter()
    try:
        with run.stage(name):
            yield
    finally:
        result.stage_seconds[name] = time.perf_counter() - t0


def _stored_symbols(store: Store) -> list[str]:
    version = store.current_version()
    if version is None or store.manifest(version).prices_name() is None:
        return []
    paths = price_paths(store, version)
    return pl.scan_parquet(paths).select(pl.col("symbol").unique()).collect()["symbol"].to_list()


def _validate(run: RunContext, result: PipelineResult, store: Store, config: AuroraConfig,
              name: str) -> None:
    report = validate_store(store, config)
    errors = [f.line() for f in report.errors]
    run.record_quality(name, report.ok, errors, [f.line() for f in report.warnings][:50])
    result.checks.append((name, report.ok, report.summary_lines()[0]))
    if not report.ok:
        raise DataValidationError(f"{name} failed with {len(errors)} error(s); first: "
                                  f"{errors[0]}; the next stage was not started")


def _describe_outputs(store: Store, result: PipelineResult) -> None:
    version = store.current_version()
    result.version = version
    if version is None:
        return
    manifest = store.manifest(version)
    for name, entry in sorted(manifest.files.items()):
        bits = []
        if entry.meta("rows") is not None:
            bits.append(f"{entry.meta('rows'):,} rows")
        if entry.meta("symbols") is not None:
            bits.append(f"{entry.meta('symbols')} symbols")
        if entry.meta("date_min") and entry.meta("date_max"):
            bits.append(f"{entry.meta('date_min')}..{entry.meta('date_max')}")
        result.files.append((name, entry.bytes, ", ".join(bits)))
    result.checks.append(("checksums", not store.verify(version),
                          f"sha256 of {len(manifest.files)} files verified"))


def _top_ranked(store: Store, result: PipelineResult, count: int = 10) -> None:
    """The `count` best-ranked symbols of the latest predictions.json."""
    path = store.verified_path(PREDICTIONS)
    if path is None:
        return
    doc = json.loads(path.read_text())
    result.decision_date = doc.get("decision_date")
    ranked = sorted((p for p in doc.get("predictions", []) if p.get("rank") is not None),
                    key=lambda p: p["rank"])
    result.top = [(str(p["symbol"]), p.get("score")) for p in ranked[:count]]


def run_pipeline(
    config: AuroraConfig,
    *,
    command: str = "run",
    universe: UniverseLike | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    evaluate: bool = False,
    progress: Progress | None = None,
    now: Callable[[], dt.datetime] | None = None,
    run: RunContext | None = None,
) -> PipelineResult:
    """Run fetch -> validate -> build -> predict [-> evaluate] -> verify on `config.data_dir`.

    `universe` defaults to `resolve_universe(config, store)`; `run` is the caller's run
    context (one is opened here when None). Raises the failing stage's AuroraError (the run
    is recorded and alerts raised first).
    """
    store = Store(config.data_dir)
    opened = run_context(store, config, command, now=now) if run is None else nullcontext(run)
    result = PipelineResult(command, store.root)
    t0 = time.perf_counter()
    with opened as ctx:
        result.run_id = ctx.id
        try:
            _stages(ctx, result, store, config, universe, start, end, evaluate, progress)
        finally:
            result.seconds = time.perf_counter() - t0
    result.alerts = ctx.alerts
    return result


def _stages(run: RunContext, result: PipelineResult, store: Store, config: AuroraConfig,
            universe: UniverseLike | None, start: dt.date | None, end: dt.date | None,
            evaluate: bool, progress: Progress | None) -> None:
    wanted = as_universe(universe) if universe is not None else resolve_universe(config, store)
    run.use_universe(wanted)
    try:
        with _stage(run, result, "fetch"):
            report = fetch_prices(config, universe=wanted, start=start, end=end,
                                  progress=progress)
    except AuroraError as exc:
        if isinstance(exc, DataValidationError):
            run.record_quality("fetch validation", False, [str(exc)])
        if exc.report is not None:  # the fetch got as far as knowing what it could not cover
            missing = set(exc.missing_symbols)
            run.record_coverage(wanted.symbols, [s for s in wanted.symbols if s not in missing])
        raise
    run.add(rows=report.bars, symbols=report.symbols, requests=report.requests,
            retries=report.retries, bars_fetched=report.bars_fetched)
    run.set_detail(fetch={"version": report.version, "warnings": report.warnings[:20],
                          "rate_limit_wait_seconds": report.rate_limit_wait_seconds})
    result.fetch_lines = report.summary_lines()
    held = read_quarantine(store).quarantined  # stored bars kept as they were: not delivered
    result.coverage = run.record_coverage(
        wanted.symbols, [s for s in _stored_symbols(store) if s not in held])
    if any(s in held for s in wanted.symbols):
        run.set_detail(quarantined={s: held[s].reason() for s in wanted.symbols if s in held})
    result.checks.append(("fetch validation", True,
                          f"{report.bars:,} bars, {len(report.warnings)} warning(s)"))
    with _stage(run, result, "validate"):
        _validate(run, result, store, config, "store validation")
    try:
        with _stage(run, result, "build"), connect(config.compute.scheduler) as runner:
            built = build_features(store, config, universe=wanted, progress=progress,
                                   runner=runner if config.compute.scheduler else None)
    except DataValidationError as exc:
        run.record_quality("feature gates", False, [str(exc)])
        raise
    gates = built.gates.results
    run.record_quality("feature gates", built.gates.passed,
                       [f"{g.name}: {g.message}" for g in gates if not g.passed])
    result.checks.append(("feature gates", built.gates.passed,
                          f"{sum(g.passed for g in gates)}/{len(gates)} passed; "
                          f"{built.rows:,} rows x {built.meta.get('feature_count')} features"))
    with _stage(run, result, "predict"):
        predicted = predict_stage.predict(store, config, universe=wanted, progress=progress)
    result.evaluation = summary_lines(predicted.evaluation)
    if evaluate:
        with _stage(run, result, "evaluate"), connect(config.compute.scheduler) as runner:
            evaluated = predict_stage.evaluate(store, config, universe=wanted,
                                               progress=progress, runner=runner)
        result.evaluation = evaluated.summary_lines()
    with _stage(run, result, "verify"):
        _validate(run, result, store, config, "final validation")
    with _stage(run, result, "track"):
        _track(run, result, store, config)
    with _stage(run, result, "report"):
        _report(run, result, store, config)
    _describe_outputs(store, result)
    _top_ranked(store, result)
