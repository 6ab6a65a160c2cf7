"""`fetch_prices`: plan -> fetch (checkpointed) -> restatements -> validate -> publish.

Contract:
- Sessions `start`..`end` are NYSE dates, both inclusive. Defaults: `end` = the last
  completed session, `start` = `config.fetch.history_years` before it.
- Symbols are normalised, requested in batches of `config.fetch.batch_size`, paced by the
  persistent rate limiter (data/state/ratelimit.json) and retried per `RetryPolicy`.
- Each completed batch is checkpointed under data/state/fetch/<plan-id>/; a rerun with the
  same plan skips completed batches. The checkpoint is removed after a successful publish.
- A batch that still fails is recorded and the other batches go on; afterwards the run
  raises FetchError carrying the symbols not covered and the per-batch report (a copy for
  people in data/state/fetch-failures.json). Rejected credentials raise CredentialsError
  at once.
- Before publishing, the merged prices go through `aurora.validation.validate_prices`:
  errors raise DataValidationError carrying the symbols without bars and the report (a
  copy in data/state/fetch-validation-report.json).
- In every failure case `data/latest` is untouched.
- Progress: `progress("fetch bars", batches done, batches)`, then "fetch restated".
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import polars as pl

from aurora.atomic import atomic_write_json
from aurora.calendar import last_completed_session, sessions
from aurora.config import AuroraConfig
from aurora.errors import ConfigError, CredentialsError, DataValidationError, FetchError
from aurora.fetch.batches import BatchRequest, Checkpoint, make_batches, normalize_symbols, plan_id
from aurora.fetch.client import AlpacaBarsClient
from aurora.fetch.corporate_actions import (
    empty_actions,
    fetch_corporate_actions,
    merge_actions,
)
from aurora.fetch.incremental import find_restatements, merge_prices, plan_fetch
from aurora.fetch.publish import load_stored, publish_fetch
from aurora.fetch.ratelimit import RateLimiter
from aurora.fetch.summary import BatchFailure, FetchReport
from aurora.progress import Progress, Steps
from aurora.redaction import redact_url
from aurora.retry import RetryPolicy
from aurora.schemas import find_duplicate_keys
from aurora.store import Store
from aurora.universe import Universe, UniverseLike, as_universe, resolve_universe
from aurora.validation import validate_prices

ACTIONS_LOOKBACK_DAYS = 92
TIMEFRAME = "1Day"


def default_window(config: AuroraConfig, now: dt.datetime | None = None) -> tuple[dt.date, dt.date]:
    """(start, end): `history_years` back to the last completed session."""
    end = last_completed_session(now)
    years = config.fetch.history_years
    try:
        start = end.replace(year=end.year - years)
    except ValueError:  # 29 February
        start = end.replace(year=end.year - years, day=28)
    return start, end


@dataclass
class _Run:
    """Mutable state of one run shared by the batch workers."""

    client: AlpacaBarsClient
    checkpoint: Checkpoint
    steps: Steps
    adjustment: str
    feed: str
    frames: dict[str, pl.DataFrame] = field(default_factory=dict)
    failures: list[BatchFailure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    resumed: int = 0
    fetched_bars: int = 0


def _check_batch(request: BatchRequest, frame: pl.DataFrame, warnings: list[str]) -> pl.DataFrame:
    """Duplicates and unrequested symbols in one batch's answer (FetchError if conflicting)."""
    extra = sorted(set(frame.get_column("symbol").unique()) - set(request.symbols))
    if extra:
        warnings.append(f"batch {request.label()}: ignored bars of unrequested symbols {extra}")
        frame = frame.filter(pl.col("symbol").is_in(list(request.symbols)))
    duplicates = find_duplicate_keys(frame)
    if duplicates is not None:
        if duplicates.conflicting.height:
            raise FetchError(f"batch {request.label()}: {duplicates.message()}")
        warnings.append(f"batch {request.label()}: {duplicates.message()}; the copies removed")
        frame = frame.unique(["symbol", "date"], keep="first", maintain_order=True)
    return frame


def _run_batch(run: _Run, request: BatchRequest) -> None:
    frame = run.checkpoint.load(request)
    if frame is not None:
        run.resumed += 1
    else:
        try:
            frame = run.client.get_bars(
                list(request.symbols), request.start, request.end, timeframe=TIMEFRAME,
                adjustment=run.adjustment, feed=run.feed,
            )
            frame = _check_batch(request, frame, run.warnings)
        except CredentialsError:
            raise
        except FetchError as exc:
            run.failures.append(BatchFailure(request.label(), request.symbols, str(exc)))
            run.steps.step()
            return
        run.checkpoint.save(request, frame)
        run.fetched_bars += frame.height
    run.frames[request.key] = frame
    run.steps.step()


def _run_batches(run: _Run, batches: Sequence[BatchRequest], concurrency: int) -> None:
    if concurrency <= 1 or len(batches) <= 1:
        for request in batches:
            _run_batch(run, request)
        return
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="fetch") as pool:
        futures = [pool.submit(_run_batch, run, request) for request in batches]
        for future in futures:
            future.result()  # re-raises CredentialsError (and bugs) from the workers


def _resolve_window(
    config: AuroraConfig, start: dt.date | None, end: dt.date | None
) -> tuple[dt.date, dt.date]:
    default_start, default_end = default_window(config)
    start = start or default_start
    end = end or default_end
    if start > end:
        raise ConfigError(f"--start {start} is after --end {end}")
    if end > default_end:
        raise ConfigError(f"--end {end} is after the last completed NYSE session {default_end}")
    if not sessions(start, end):
        raise ConfigError(f"no NYSE session between {start} and {end}")
    return start, end


def fetch_prices(
    config: AuroraConfig,
    *,
    universe: UniverseLike | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    progress: Progress | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
    transport: httpx.BaseTransport | None = None,
) -> FetchReport:
    """Fetch daily bars into the store and publish a validated version (module docstring).

    `universe` defaults to `aurora.universe.resolve_universe(config, store)`. `clock` is
    wall-clock epoch seconds and `sleep` waits (both injectable for tests); `transport`
    replaces httpx's network transport (tests). Raises CredentialsError,
    FetchError, DataValidationError, ConfigError or StoreError; never touches `latest`
    then.
    """
    started = time.perf_counter()
    key_id, secret = config.alpaca.require_credentials()
    store = Store(config.data_dir)
    universe = as_universe(universe) if universe is not None else resolve_universe(config, store)
    symbols = normalize_symbols(universe.symbols)
    universe = Universe(tuple(symbols), universe.sectors, universe.source)
    start, end = _resolve_window(config, start, end)
    fc = config.fetch
    stored = load_stored(store, adjustment=fc.adjustment, feed=fc.feed)
    plan = plan_fetch(stored.prices, symbols, start, end, batch_size=fc.batch_size,
                      overlap=fc.overlap_sessions, stored_from=stored.history_start)
    # Checkpoints are only reused for the same source and the same day: bars fetched from
    # another endpoint, or before a restatement, must never be published as today's.
    params = {"adjustment": fc.adjustment, "feed": fc.feed, "timeframe": TIMEFRAME,
              "source": redact_url(config.alpaca.data_url, keep_path=True),
              "day": dt.datetime.fromtimestamp(clock(), dt.UTC).date().isoformat()}
    checkpoint = Checkpoint(store.state_dir / "fetch" / plan_id(plan.batches, params))
    limiter = RateLimiter(fc.rate_limit_per_minute, state_path=store.state_dir / "ratelimit.json",
                          clock=clock, sleep=sleep)
    policy = RetryPolicy(fc.max_retries, fc.backoff_base_seconds, fc.backoff_max_seconds)
    report = FetchReport(warnings=list(stored.warnings), symbols_up_to_date=len(plan.up_to_date))
    client = AlpacaBarsClient(config.alpaca.data_url, key_id, secret, limiter=limiter,
                              policy=policy, timeout=fc.timeout_seconds,
                              page_limit=fc.page_limit, transport=transport, sleep=sleep)
    with client:
        run = _Run(client, checkpoint, Steps(progress, "fetch bars", len(plan.batches)),
                   fc.adjustment, fc.feed)
        _run_batches(run, plan.batches, fc.concurrency)
        phase_one = [run.frames[b.key] for b in plan.batches if b.key in run.frames]
        restated: dict[str, str] = {}
        if stored.prices is not None and phase_one:
            fetched = pl.concat(phase_one, how="vertical_relaxed")
            restated = find_restatements(stored.prices, fetched, plan)
        history_start = min(start, stored.history_start or start)
        refetch = make_batches(sorted(restated), history_start, end, fc.batch_size,
                               "restatement")
        if refetch:
            run.steps = Steps(progress, "fetch restated", len(refetch))
            _run_batches(run, refetch, fc.concurrency)
        new_actions = None
        if plan.batches:
            # Actions can be published late: always look back a quarter, not just the overlap.
            ca_start = min(min(b.start for b in [*plan.batches, *refetch]),
                           end - dt.timedelta(days=ACTIONS_LOOKBACK_DAYS))
            try:
                new_actions = fetch_corporate_actions(client, symbols, ca_start, end,
                                                      batch_size=fc.batch_size)
            except CredentialsError:
                raise
            except FetchError as exc:
                run.failures.append(BatchFailure("corporate actions", tuple(symbols), str(exc)))
    stats = client.stats.to_dict()
    report.requests, report.successful_requests = stats["requests"], stats["successful"]
    report.retries, report.rate_limited = stats["retries"], stats["rate_limited"]
    report.statuses, report.backoff_seconds = stats["statuses"], stats["backoff_seconds"]
    report.rate_limit_wait_seconds = limiter.waited_seconds
    report.batches = len(plan.batches) + len(refetch)
    report.batches_resumed, report.bars_fetched = run.resumed, run.fetched_bars
    report.restated, report.failures = restated, run.failures
    report.warnings.extend(run.warnings)
    if run.failures:
        report.elapsed_seconds = time.perf_counter() - started
        _fail(store, report, len(plan.batches) + len(refetch) + 1)

    replaced = [run.frames[b.key] for b in refetch if b.key in run.frames]
    kept = [f.filter(~pl.col("symbol").is_in(list(restated))) if restated else f
            for f in phase_one]
    # a symbol fetched in full replaces its stored history (bars no longer served go too)
    replace = set(restated) | set(plan.symbols("full"))
    prices = merge_prices(stored.prices, [*kept, *replaced], keep_symbols=symbols,
                          replace_symbols=replace)
    _coverage_warnings(stored.prices, prices, symbols, report)
    actions = merge_actions(stored.actions, new_actions) if new_actions is not None else (
        stored.actions if stored.actions is not None else empty_actions())
    validation = validate_prices(prices, universe=symbols, corporate_actions=actions,
                                 config=config.validation)
    report.validation = validation.to_dict()
    report.warnings.extend(w.line() for w in validation.warnings)
    _fill_counts(report, prices, actions)
    if not validation.ok:
        path = store.state_dir / "fetch-validation-report.json"
        atomic_write_json(path, report.validation)
        first = validation.errors[0]
        missing = [f.symbol for f in validation.findings
                   if f.check == "missing_symbols" and f.symbol]
        raise DataValidationError(
            f"fetched prices failed validation with {len(validation.errors)} error(s), first: "
            f"{first.line()}; nothing was published (report: {path})",
            missing_symbols=missing, report=report.validation)
    report.elapsed_seconds = time.perf_counter() - started
    publish_params = {
        "universe": list(symbols), "start": start.isoformat(), "end": end.isoformat(),
        **params, "history_start": history_start.isoformat(),
        "requests": report.requests, "retries": report.retries,
        "restated": sorted(restated),
        "base_url": redact_url(config.alpaca.data_url, keep_path=True),
    }
    report.version = publish_fetch(
        store, prices=prices, actions=actions, universe=universe, validation=report.validation,
        fetch_report=report.to_dict(), params=publish_params, history_start=history_start,
        base_version=stored.version,
    )
    checkpoint.clear()
    return report


def _fill_counts(report: FetchReport, prices: pl.DataFrame, actions: pl.DataFrame) -> None:
    report.bars = prices.height
    report.symbols = prices.get_column("symbol").n_unique() if prices.height else 0
    report.sessions = prices.get_column("date").n_unique() if prices.height else 0
    if prices.height:
        report.date_min = prices.get_column("date").min()  # type: ignore[assignment]
        report.date_max = prices.get_column("date").max()  # type: ignore[assignment]
    report.corporate_actions = actions.height


def _coverage_warnings(
    stored: pl.DataFrame | None, prices: pl.DataFrame, symbols: list[str], report: FetchReport
) -> None:
    have = set(prices.get_column("symbol").unique()) if prices.height else set()
    missing = [s for s in symbols if s not in have]
    if missing:
        report.warnings.append(f"no bars at all for {len(missing)} symbol(s): "
                               f"{', '.join(missing[:10])}")
    if stored is not None and stored.height:
        dropped = sorted(set(stored.get_column("symbol").unique()) - set(symbols))
        if dropped:
            report.warnings.append(
                f"{len(dropped)} stored symbol(s) left the universe and are not kept: "
                f"{', '.join(dropped[:10])}"
            )


def _fail(store: Store, report: FetchReport, total: int) -> None:
    path = store.state_dir / "fetch-failures.json"
    atomic_write_json(path, report.to_dict())
    uncovered = sorted({s for f in report.failures for s in f.symbols})
    first = report.failures[0]
    raise FetchError(
        f"{len(report.failures)} of {total} request groups failed, {len(uncovered)} symbol(s) "
        f"not covered; first: {first.batch}: {first.error}; nothing was published "
        f"(per-batch report: {path})", missing_symbols=uncovered, report=report.to_dict())
