"""`run_pipeline` and `run_demo`: fetch -> validate -> build -> predict, each stage gated.

Stages, inside one `run_context` (history, metrics, alerts, audit):
1. fetch: `aurora.fetch.fetch_prices` (validates the merged prices itself and publishes
   nothing when they fail);
2. validate: `aurora.validation.validate_store` on the published version; any error stops
   the run before the build (DataValidationError);
3. build: `aurora.features.build_features` (its quality gates publish nothing on failure);
4. predict: `aurora.predict.predict`, which trains point in time, ranks, and runs (or
   reuses) the purged walk-forward evaluation up to the feature date; with `evaluate=True`
   also `aurora.predict.evaluate` over the whole stored history;
5. verify: `validate_store` again over the final version (checksums, predictions schema).

Coverage (symbols with stored bars / universe symbols) is recorded for the coverage alert,
also when fetch refuses to publish because symbols are missing.

`run_demo` runs the same pipeline offline: an in-process Alpaca emulator on 127.0.0.1 serves
the synthetic market for the universe; its key and secret are random, held in memory only and
set on the configuration programmatically (never in the environment or a file).
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import SecretStr

from aurora import calendar
from aurora.config import AlpacaConfig, AuroraConfig
from aurora.errors import AuroraError, ConfigError, DataValidationError
from aurora.ops.alerts import Alert
from aurora.ops.runner import RunContext, run_context
from aurora.redaction import redact_url
from aurora.store import Store
from aurora.universe import Universe, default_universe

PRICES = "prices.parquet"
PREDICTIONS = "predictions.json"
DEMO_YEARS = 4


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
    alerts: list[Alert] = field(default_factory=list)
    coverage: float | None = None
    seconds: float = 0.0

    def summary_lines(self) -> list[str]:
        """A summary a person reads at a glance. No printing."""
        lines = [f"aurora {self.command}: {self.data_dir}/latest -> {self.version}"]
        lines.append("written:")
        lines += [f"  {name:<28} {size / 1e6:7.2f} MB  {detail}" for name, size, detail
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
        if self.alerts:
            lines.append(f"alerts ({len(self.alerts)}):")
            lines += [f"  [{a.severity}] {a.message}" for a in self.alerts]
        else:
            lines.append("alerts: none")
        return lines


@contextmanager
def _stage(run: RunContext, result: PipelineResult, name: str) -> Iterator[None]:
    t0 = time.perf_counter()
    try:
        with run.stage(name):
            yield
    finally:
        result.stage_seconds[name] = time.perf_counter() - t0


def _progress_bar(stage: str, enabled: bool
                  ) -> tuple[Any, Callable[[str, int, int], None] | None]:
    """A rich progress display on stderr and a `(task, done, total)` callback feeding it."""
    if not enabled:
        return None, None
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    bar = Progress(TextColumn(f"[bold]{stage}[/bold] {{task.description}}"), BarColumn(),
                   MofNCompleteColumn(), TimeElapsedColumn(), console=Console(stderr=True))
    tasks: dict[str, Any] = {}

    def note(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=max(total, 1))
        bar.update(tasks[stage], completed=done, total=max(total, 1))

    return bar, note


def _missing_after_failed_fetch(store: Store, since: float) -> list[str] | None:
    """Symbols a failed fetch reported missing (from its state reports), if it wrote any."""
    found: set[str] = set()
    seen = False
    for name in ("fetch-validation-report.json", "fetch-failures.json"):
        path = store.state_dir / name
        if not path.exists() or path.stat().st_mtime < since:
            continue
        seen = True
        report = json.loads(path.read_text())
        found |= {f["symbol"] for f in report.get("findings", [])
                  if f.get("check") == "missing_symbols" and f.get("symbol")}
        for failure in report.get("failures", []):
            found |= set(failure.get("symbols", []))
    return sorted(found) if seen else None


def _stored_symbols(store: Store) -> list[str]:
    path = store.latest_file(PRICES)
    if path is None:
        return []
    return pl.scan_parquet(path).select(pl.col("symbol").unique()).collect()["symbol"].to_list()


def _validate(run: RunContext, result: PipelineResult, store: Store, config: AuroraConfig,
              name: str) -> None:
    from aurora.validation import validate_store

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
    for name, meta in sorted(manifest.get("files", {}).items()):
        bits = []
        if meta.get("rows") is not None:
            bits.append(f"{meta['rows']:,} rows")
        if meta.get("symbols") is not None:
            bits.append(f"{meta['symbols']} symbols")
        if meta.get("date_min") and meta.get("date_max"):
            bits.append(f"{meta['date_min']}..{meta['date_max']}")
        result.files.append((name, int(meta.get("bytes", 0)), ", ".join(bits)))
    result.checks.append(("checksums", not store.verify(version),
                          f"sha256 of {len(manifest.get('files', {}))} files verified"))


def _top_ranked(store: Store, result: PipelineResult, count: int = 10) -> None:
    """The `count` best-ranked symbols of the latest predictions.json."""
    path = store.latest_file(PREDICTIONS)
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
    universe: Universe | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    evaluate: bool = False,
    progress: bool = True,
    now: Callable[[], dt.datetime] | None = None,
) -> PipelineResult:
    """Run fetch -> validate -> build -> predict [-> evaluate] -> verify on `config.data_dir`.

    Raises the failing stage's AuroraError (the run is recorded and alerts raised first).
    """
    from aurora.features import build_features
    from aurora.fetch import fetch_prices
    from aurora.fetch.publish import resolve_universe

    store = Store(config.data_dir)
    result = PipelineResult(command, store.root)
    t0 = time.perf_counter()
    with run_context(store, config, command, now=now) as run:
        result.run_id = run.id
        try:
            wanted = universe or resolve_universe(config, store)
            fetch_started = time.time()
            try:
                with _stage(run, result, "fetch"):
                    report = fetch_prices(config, universe=wanted, start=start, end=end,
                                          progress=progress)
            except Exception as exc:
                if isinstance(exc, DataValidationError):
                    run.record_quality("fetch validation", False, [str(exc)])
                missing = _missing_after_failed_fetch(store, fetch_started)
                if missing is not None:
                    run.record_coverage(wanted.symbols,
                                        [s for s in wanted.symbols if s not in missing])
                raise
            run.add(rows=report.bars, symbols=report.symbols, requests=report.requests,
                    retries=report.retries, bars_fetched=report.bars_fetched)
            run.set_detail(fetch={"version": report.version, "warnings": report.warnings[:20],
                                  "rate_limit_wait_seconds": report.rate_limit_wait_seconds})
            result.fetch_lines = report.summary_lines()
            result.coverage = run.record_coverage(wanted.symbols, _stored_symbols(store))
            result.checks.append(("fetch validation", True,
                                  f"{report.bars:,} bars, {len(report.warnings)} warning(s)"))
            with _stage(run, result, "validate"):
                _validate(run, result, store, config, "store validation")
            bar, note = _progress_bar("build", progress)
            try:
                with _stage(run, result, "build"), bar or nullcontext():
                    built = build_features(store, config, universe=list(wanted.symbols),
                                           progress=note)
            except DataValidationError as exc:
                run.record_quality("feature gates", False, [str(exc)])
                raise
            gates = built.gates.results
            run.record_quality("feature gates", built.gates.passed,
                               [f"{g.name}: {g.message}" for g in gates if not g.passed])
            result.checks.append(("feature gates", built.gates.passed,
                                  f"{sum(g.passed for g in gates)}/{len(gates)} passed; "
                                  f"{built.rows:,} rows x {built.meta.get('feature_count')} "
                                  "features"))
            _predict_stages(run, result, store, config, wanted.symbols, evaluate, progress)
            with _stage(run, result, "verify"):
                _validate(run, result, store, config, "final validation")
            _describe_outputs(store, result)
            _top_ranked(store, result)
        finally:
            result.seconds = time.perf_counter() - t0
    result.alerts = run.alerts
    return result


def _predict_stages(run: RunContext, result: PipelineResult, store: Store,
                    config: AuroraConfig, symbols: Sequence[str], evaluate: bool,
                    progress: bool) -> None:
    """predict (which runs or reuses the walk-forward evaluation), then `evaluate` if asked."""
    from aurora import predict as predict_module
    from aurora.predict.evaluate import summary_lines

    bar, note = _progress_bar("predict", progress)
    with _stage(run, result, "predict"), bar or nullcontext():
        folds = (lambda done, total: note("walk-forward folds", done, total)) if note else None
        predicted = predict_module.predict(store, config, universe=list(symbols),
                                           progress=folds)
    result.evaluation = summary_lines(predicted.evaluation)
    if evaluate:
        bar, note = _progress_bar("evaluate", progress)
        with _stage(run, result, "evaluate"), bar or nullcontext():
            folds = (lambda done, total: note("folds", done, total)) if note else None
            report = predict_module.evaluate(store, config, universe=list(symbols),
                                             progress=folds)
        result.evaluation = report.summary_lines()


def demo_window(now: dt.datetime | None = None, years: int = DEMO_YEARS
                ) -> tuple[dt.date, dt.date]:
    """(first, last) session of the demo: `years` back to the last completed session."""
    end = calendar.last_completed_session(now)
    start = calendar.next_session(end.replace(year=end.year - years, day=min(end.day, 28)))
    return start, end


def _fetched_from(store: Store) -> str | None:
    """The API base URL the latest prices were fetched from (None when unknown or empty)."""
    version = store.current_version()
    for _ in range(10_000):
        if version is None:
            return None
        manifest = store.manifest(version)
        if manifest.get("stage") == "fetch":
            return manifest.get("params", {}).get("base_url")
        version = manifest.get("parent")
    return None


def _refuse_foreign_store(store: Store) -> None:
    """The demo must not mix synthetic bars into a store fetched from a real API."""
    try:
        source = _fetched_from(store)
    except AuroraError:
        return  # an unreadable store: the fetch stage reports it properly
    if source and not source.startswith(("http://127.0.0.1", "http://localhost")):
        raise ConfigError(f"{store.root} holds prices fetched from {redact_url(source)}; "
                          "run the demo in another directory (--data-dir)")


def run_demo(
    config: AuroraConfig,
    *,
    symbols: Sequence[str] | None = None,
    years: int = DEMO_YEARS,
    progress: bool = True,
    seed: int = 7,
) -> PipelineResult:
    """The whole pipeline offline against an in-process emulator (module docstring)."""
    from aurora.emulator import EmulatorServer, MarketData

    universe = default_universe()
    if symbols is not None:
        universe = Universe(tuple(symbols), {s: universe.sectors[s] for s in symbols
                                             if s in universe.sectors}, "demo universe")
    _refuse_foreign_store(Store(config.data_dir))
    start, end = demo_window(years=years)
    market = MarketData.synthetic(universe.symbols, start, end, seed=seed)
    key_id, secret = f"DEMO{secrets.token_hex(8).upper()}", secrets.token_urlsafe(32)
    server = EmulatorServer(market, {key_id: secret},
                            rate_limit_per_minute=max(config.fetch.rate_limit_per_minute, 1000))
    url = server.start()
    try:
        demo_config = config.model_copy(update={
            "alpaca": AlpacaConfig(key_id=SecretStr(key_id), secret_key=SecretStr(secret),
                                   data_url=url),
            "fetch": config.fetch.model_copy(update={
                "rate_limit_per_minute": max(config.fetch.rate_limit_per_minute, 1000)}),
        })
        return run_pipeline(demo_config, command="demo", universe=universe, start=start,
                            end=end, progress=progress)
    finally:
        server.stop()
