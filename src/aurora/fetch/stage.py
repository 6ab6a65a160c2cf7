"""`fetch_prices`: plan -> fetch (checkpointed) -> restatements -> validate -> publish.

Contract:
- Sessions `start`..`end` are NYSE dates, both inclusive. Defaults: `end` = the last
  completed session, `start` = `config.fetch.history_years` before it.
- A store is bound to its source (`aurora.fetch.source`: URL, feed, adjustment, synthetic
  or not). Stored prices of another URL, or synthetic ones when these are not (and the
  reverse), raise ConfigError before any request, unless `fetch.new_history` is set: then
  everything is fetched from scratch and the version published holds only the new
  source's prices. Another feed or adjustment refetches everything (said in the summary).
- Symbols are normalised, requested in batches of `config.fetch.batch_size`, paced by the
  persistent rate limiter (data/state/ratelimit.json) and retried per `RetryPolicy`.
  Every stored symbol has its last `overlap_sessions` sessions re-read, also when it is
  already stored through `end`, so a restatement (or a source that lacks them) is seen.
- Reconciliation (`aurora.fetch.reconcile`): each run also re-reads the whole stored
  history of a rotating slice of ceil(symbols / `reconcile_cycle_runs`) stored symbols; a
  symbol whose re-read differs is replaced by it (reported as a reconciliation finding).
- Each completed batch is checkpointed under data/state/fetch/<plan-id>/; a rerun with the
  same plan skips completed batches. Other plans' checkpoint directories are removed when
  a fetch starts; this plan's after a successful run.
- A batch that still fails is recorded and the other batches go on; afterwards the run
  raises FetchError carrying the symbols not covered and the per-batch report (a copy for
  people in data/state/fetch-failures.json). Rejected credentials raise CredentialsError
  at once. After `fetch.deadline_seconds` no new request group is started and the run
  raises FetchError naming the deadline.
- Circuit breaker on 429 storms: once a request group fails because the server kept
  answering HTTP 429 (`RateLimitWaitExceeded`: one request would wait more than
  `fetch.max_rate_limit_wait_seconds`; or `RetriesExhausted` with a 429 last, see
  `aurora.fetch.outcomes.refused_by_rate_limit`), no new request group is started (groups
  already in flight, at most `concurrency`, finish), so a storm costs about one group's
  waiting budget, not one per batch. The run raises FetchError saying the server kept
  refusing with HTTP 429, naming the batch and the setting that ended it and how long the
  fetch waited on the rate limit in all, carrying the symbols not covered. Completed
  batches stay checkpointed; nothing is published.
- Corporate actions that cannot be fetched are not a bar failure: the run raises
  FetchError and publishes nothing (Aurora adjusts the raw bars from the actions, so a
  missing split would read as a return), the bars stay checkpointed, and no symbol is
  reported "not covered".
- Stored symbols outside this run's universe are kept, not refreshed, while validation
  would not call them stale (`stale_symbol`) and `unexpected_symbols` is not an error;
  otherwise they are dropped with a warning.
- Failures isolated to the symbol (`aurora.fetch.quarantine`): a batch's conflicting
  duplicate bars no longer fail it (an all-zero twin is dropped; otherwise the symbol is
  quarantined and the rest of the batch kept), and the per-symbol errors of validating the
  merged prices (with this run's universe, as `aurora validate` checks the version)
  quarantine their symbols while at most `fetch.max_quarantine_share` of the universe is
  quarantined. A quarantined symbol's stored bars are published as they were (a new one
  has none) and the version's quarantine.json says why (`aurora.quarantine`); symbols
  quarantined before, or released since, are read in full again. Beyond that share, or on
  any other error, the run raises DataValidationError carrying the symbols without bars
  (and those it would have quarantined) and the report (a copy in
  data/state/fetch-validation-report.json).
- Symbols that stopped trading (`aurora.fetch.assets`): after the bars and actions, one
  `GET {alpaca.base_url}/v2/assets` asks the trading API which universe symbols are
  inactive (delisted); validation ends their history at their last bar (no
  `stale_symbol`; one without any bar is a `missing_symbols` warning), the summary names
  them, and fetch_report.json, the params and the prices' entry record them (`inactive`:
  symbol -> last bar date). When that request fails the fetch goes on with a warning, as
  if no symbol were inactive. Its requests count in the report's request stats.
- When the merged prices, actions, universe, source, inactive symbols and quarantine
  record equal the stored ones nothing is published: `FetchReport.unchanged` is True and
  `version` is the existing version.
- In every failure case `data/latest` is untouched.
- Progress: `progress("fetch bars", batches done, batches)`, then "fetch restated".
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence

import httpx
import polars as pl

from aurora.atomic import atomic_write_json
from aurora.calendar import last_completed_session, next_session, sessions
from aurora.config import AuroraConfig, FetchConfig
from aurora.deadline import Deadline, DeadlineExceeded
from aurora.errors import ConfigError, FetchError
from aurora.fetch.actions_fetch import fetch_actions
from aurora.fetch.assets import AssetStatuses, asset_statuses
from aurora.fetch.batches import (
    BatchRequest,
    Checkpoint,
    clean_checkpoints,
    make_batches,
    normalize_symbols,
    plan_id,
)
from aurora.fetch.batchrun import TIMEFRAME, BatchRun, copy_stats, run_batches
from aurora.fetch.client import AlpacaBarsClient
from aurora.fetch.corporate_actions import (
    empty_actions,
    merge_actions,
    renamed_into_since,
    without_earlier_holders,
)
from aurora.fetch.incremental import FetchPlan, find_restatements, plan_fetch
from aurora.fetch.merged import merge_fetched, validate_merged
from aurora.fetch.publish import Stored, load_stored, publish_fetch, unchanged
from aurora.fetch.quarantine import FetchQuarantine
from aurora.fetch.ratelimit import RateLimiter
from aurora.fetch.reconcile import next_slice, read_cursor, write_cursor
from aurora.fetch.source import PriceSource
from aurora.fetch.summary import FetchReport
from aurora.progress import Progress, Steps
from aurora.quarantine import QuarantineRecord, read_quarantine
from aurora.redaction import redact_url
from aurora.store import Store
from aurora.universe import Universe, UniverseLike, as_universe, resolve_universe
from aurora.validation.inactive import INACTIVE_META, last_bars, recorded_inactive

log = logging.getLogger(__name__)

def default_window(config: AuroraConfig, now: dt.datetime | None = None) -> tuple[dt.date, dt.date]:
    """(start, end): `history_years` back to the last completed session."""
    end = last_completed_session(now)
    years = config.fetch.history_years
    try:
        start = end.replace(year=end.year - years)
    except ValueError:  # 29 February
        start = end.replace(year=end.year - years, day=28)
    return start, end


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


def _members_in_window(universe: Universe, first: dt.date, last: dt.date
                       ) -> tuple[list[str], list[str]]:
    """(the symbols to fetch, the dated universe's symbols never a member in first..last)."""
    if universe.membership is None:
        return list(universe.symbols), []
    within = set(universe.membership.ever_between(first, last))
    return ([s for s in universe.symbols if s in within],
            [s for s in universe.symbols if s not in within])


def _plan(store: Store, stored: Stored, symbols: list[str], start: dt.date, end: dt.date,
          fc: FetchConfig, history_start: dt.date, full: set[str]
          ) -> tuple[FetchPlan, list[str]]:
    """The request plan (`full` symbols requested over the whole window, as if not stored),
    and this run's reconciliation slice of the stored symbols (in rotation order: its last
    symbol is the next run's cursor)."""
    base = stored.prices
    if base is not None and full:
        base = base.filter(~pl.col("symbol").is_in(sorted(full)))

    def plan(reconcile: Sequence[str] = ()) -> FetchPlan:
        return plan_fetch(base, symbols, start, end, batch_size=fc.batch_size,
                          overlap=fc.overlap_sessions, stored_from=stored.history_start,
                          reconcile=reconcile, reconcile_from=history_start)

    first = plan()
    chosen = next_slice(first.symbols("incremental"), read_cursor(store.state_dir),
                        fc.reconcile_cycle_runs)
    return (plan(chosen) if chosen else first), chosen


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
    wall-clock epoch seconds and `sleep` waits (both injectable for tests; the deadline
    is measured on `clock`); `transport` replaces httpx's network transport (tests).
    Raises CredentialsError, FetchError, DataValidationError, ConfigError or StoreError;
    never touches `latest` then.
    """
    started = time.perf_counter()
    fc = config.fetch
    deadline = Deadline.after(fc.deadline_seconds, "fetch", clock=clock)
    config.alpaca.require_credentials()  # before anything is read or written
    store = Store(config.data_dir)
    universe = as_universe(universe) if universe is not None else resolve_universe(config, store)
    universe = dataclasses.replace(universe, symbols=tuple(normalize_symbols(universe.symbols)))
    start, end = _resolve_window(config, start, end)
    source = PriceSource.of(config)
    stored = load_stored(store, source, new_history=fc.new_history)
    history_start = min(start, stored.history_start or start)
    # a dated universe's members whose membership lies outside the stored window are
    # recorded with the universe but not fetched (an index history reaches back decades)
    symbols, outside = _members_in_window(universe, history_start, end)
    # a new history keeps nothing of the old one, its quarantine record included
    carried = (QuarantineRecord() if fc.new_history or stored.version is None
               else read_quarantine(store, stored.version))
    quarantine = FetchQuarantine(carried, tuple(symbols), fc.max_quarantine_share)
    refetch_full = quarantine.refetch_in_full()
    plan, reconcile_slice = _plan(store, stored, symbols, start, end, fc, history_start,
                                  refetch_full)
    # Checkpoints are only reused for the same source and the same day: bars fetched from
    # another endpoint, or before a restatement, must never be published as today's.
    params = {"adjustment": fc.adjustment, "feed": fc.feed, "timeframe": TIMEFRAME,
              "source": redact_url(config.alpaca.data_url, keep_path=True),
              "day": dt.datetime.fromtimestamp(clock(), dt.UTC).date().isoformat()}
    checkpoint = Checkpoint(store.state_dir / "fetch" / plan_id(plan.batches, params))
    removed = clean_checkpoints(checkpoint.directory.parent, checkpoint.directory)
    limiter = RateLimiter(fc.rate_limit_per_minute, state_path=store.state_dir / "ratelimit.json",
                          clock=clock, sleep=sleep)
    report = FetchReport(warnings=list(stored.warnings), symbols_up_to_date=len(plan.up_to_date),
                         source=source.describe(), synthetic=source.synthetic,
                         refetch_reason=stored.refetch_reason,
                         reconciled=plan.symbols("reconcile"), checkpoints_removed=len(removed),
                         not_members_in_window=outside)
    client = AlpacaBarsClient.from_config(config, limiter=limiter, transport=transport,
                                          sleep=sleep, deadline=deadline)
    with client:
        run = BatchRun(client, checkpoint, Steps(progress, "fetch bars", len(plan.batches)),
                   fc.adjustment, fc.feed, deadline, quarantine=quarantine)
        run_batches(run, plan.batches, fc.concurrency)
        _stop_if_refused(store, report, run, len(plan.batches), limiter)
        _stop_if_late(store, report, run, len(plan.batches), limiter)
        phase_one = [run.frames[b.key] for b in plan.batches if b.key in run.frames]
        restated: dict[str, str] = {}
        if stored.prices is not None and phase_one:
            fetched = pl.concat(phase_one, how="vertical_relaxed")
            # a quarantined symbol's bars left its batch: not a restatement
            compared = stored.prices.filter(~pl.col("symbol").is_in(quarantine.symbols()))
            restated = find_restatements(compared, fetched, plan)
            report.reconcile_differed = find_restatements(compared, fetched, plan,
                                                          "reconcile")
        refetch = make_batches(sorted(restated), history_start, end, fc.batch_size,
                               "restatement")
        if refetch:
            run.steps = Steps(progress, "fetch restated", len(refetch))
            run_batches(run, refetch, fc.concurrency)
            _stop_if_refused(store, report, run, len(plan.batches) + len(refetch), limiter)
            _stop_if_late(store, report, run, len(plan.batches) + len(refetch), limiter)
        new_actions: pl.DataFrame | None = None
        rederived: set[str] = set()
        if plan.batches:
            try:
                if deadline.expired():
                    raise DeadlineExceeded(deadline.message(), deadline)
                new_actions, report.actions_error, rederived = fetch_actions(
                    client, plan, stored, restated, symbols, history_start, fc, deadline)
            except DeadlineExceeded as exc:
                if exc.deadline is not deadline:
                    raise
                run.skipped.append(BatchRequest((), end, end, "corporate actions"))
                _stop_if_late(store, report, run, len(plan.batches) + len(refetch) + 1,
                              limiter)
        statuses: AssetStatuses | None = None  # not asked when the fetch fails anyway
        if not run.failures and report.actions_error is None:
            statuses = asset_statuses(config, symbols, limiter=limiter, transport=transport,
                                      sleep=sleep, deadline=deadline, stats=client.stats)
            if statuses.error and stored.version is not None and not fc.new_history:
                entry = store.manifest(stored.version).prices_entry()
                statuses = dataclasses.replace(statuses,
                                               recorded=tuple(recorded_inactive(entry)))
    copy_stats(report, limiter, run)
    if statuses is not None and statuses.error:
        report.warnings.append(str(statuses.warning()))
    report.batches = len(plan.batches) + len(refetch)
    report.restated = restated
    if run.failures:
        report.elapsed_seconds = time.perf_counter() - started
        _fail(store, report, len(plan.batches) + len(refetch) + 1)
    if report.actions_error is not None:
        _actions_unavailable(store, report, fc.adjustment)
    assert statuses is not None  # asked unless the fetch failed above

    replaced = [run.frames[b.key] for b in refetch if b.key in run.frames]
    kept = [f.filter(~pl.col("symbol").is_in(list(restated))) if restated else f
            for f in phase_one]
    # a symbol fetched in full replaces its stored history (bars no longer served go too)
    replace = set(restated) | set(plan.symbols("full")) | set(plan.symbols("reconcile"))
    prices = merge_fetched(stored.prices, [*kept, *replaced], symbols, replace,
                           config.validation, report)
    merged_actions = (
        merge_actions(stored.actions, new_actions, rederived, next_session(plan.end))
        if new_actions is not None
        else stored.actions if stored.actions is not None else empty_actions())
    actions = without_earlier_holders(merged_actions, set(symbols))
    # said once, by the fetch that first sees the rename; the company's own rows left out
    # (kept as its renamed copies) are not another's
    left_out = merged_actions.join(actions.select("id"), on="id", how="anti").filter(
        pl.col("symbol").is_in(list(renamed_into_since(actions, stored.actions, set(symbols))))
        & ~(pl.col("id") + "@" + pl.col("symbol")).is_in(actions["id"].implode()))
    if left_out.height:
        report.warnings.append(
            f"corporate actions: left out {left_out.height} filed under "
            f"{', '.join(sorted(set(left_out['symbol']))[:10])} before the latest rename "
            f"into each (the ticker then named another company): "
            f"{', '.join(left_out['id'].head(5))}")
    prices = validate_merged(store, prices, actions, symbols, config.validation, report,
                             quarantine, stored.prices, statuses)
    ends = last_bars(prices, statuses.inactive)
    inactive = {s: day.isoformat() if day else None for s, day in ends.items()}
    report.assets = statuses.record(ends)
    record = quarantine.record(refetched=refetch_full)
    report.elapsed_seconds = time.perf_counter() - started
    actions_stale = report.actions_error is not None
    if record.to_json() == carried.to_json() and unchanged(
            stored, prices=prices, actions=actions, universe=universe,
            prices_meta={**source.meta(), "history_start": history_start.isoformat(),
                         INACTIVE_META: inactive or None},
            actions_stale=actions_stale):
        report.unchanged, report.version = True, stored.version
    else:
        publish_params = {
            "universe": list(symbols), "start": start.isoformat(), "end": end.isoformat(),
            **params, "history_start": history_start.isoformat(),
            "requests": report.requests, "retries": report.retries,
            "restated": sorted(restated),
            "base_url": source.url, "synthetic": source.synthetic,
            "new_history": fc.new_history, "reconciled": report.reconciled,
            "reconcile_differed": sorted(report.reconcile_differed),
            "kept_unrefreshed": report.kept_unrefreshed, "actions_stale": actions_stale,
            "quarantined": {s: e.reason() for s, e in quarantine.entries().items()},
            "inactive": inactive,
        }
        report.version = publish_fetch(
            store, prices=prices, actions=actions, universe=universe,
            validation=report.validation, fetch_report=report.to_dict(),
            params=publish_params, history_start=history_start, base_version=stored.version,
            source=source, actions_stale=actions_stale, quarantine=record,
            inactive=inactive, previous=stored.prices,
        )
    checkpoint.clear()
    write_cursor(store.state_dir, reconcile_slice, fc.reconcile_cycle_runs, end)
    return report


def _actions_unavailable(store: Store, report: FetchReport, adjustment: str) -> None:
    """Raise FetchError: Aurora adjusts the raw bars from the actions, so bars published
    without their actions could show a split as a return."""
    path = store.state_dir / "fetch-failures.json"
    atomic_write_json(path, report.to_dict())
    raise FetchError(
        f"corporate actions could not be fetched ({report.actions_error}); prices with "
        f"adjustment={adjustment} are adjusted from them, so nothing was published (no "
        f"symbol lacks bars; the bars are checkpointed: run again, report: {path})",
        report=report.to_dict())


def _stop_if_refused(store: Store, report: FetchReport, run: BatchRun, total: int,
                     limiter: RateLimiter) -> None:
    """FetchError once the circuit breaker tripped: a request group gave up on HTTP 429s
    (its rate-limit waiting budget or its retries spent), so later groups were not
    started. The one line names the batch, the setting that ended it and the whole fetch's
    rate-limit waiting."""
    if run.refused is None:
        return
    copy_stats(report, limiter, run)
    path = store.state_dir / "fetch-failures.json"
    atomic_write_json(path, report.to_dict())
    open_groups = [*((f.batch, f.symbols) for f in run.failures),
                   *((b.label(), b.symbols) for b in (*run.halted, *run.skipped))]
    uncovered = sorted({s for _, symbols in open_groups for s in symbols})
    raise FetchError(
        f"the server kept refusing with HTTP 429 (rate limited): batch {run.refused.batch} "
        f"gave up {run.refused_why}, so no further request group was started; the fetch "
        f"waited {limiter.waited_seconds:.0f} s on the rate limit in all; "
        f"{len(open_groups)} of {total} request groups not completed "
        f"({len(uncovered)} symbol(s) not covered); nothing was published (completed "
        f"batches are checkpointed: run again later to resume; report: {path})",
        missing_symbols=uncovered, report=report.to_dict())


def _stop_if_late(store: Store, report: FetchReport, run: BatchRun, total: int,
                  limiter: RateLimiter) -> None:
    """FetchError naming `fetch.deadline_seconds` when request groups were not
    completed (not started, or cut short by the whole fetch's deadline)."""
    if not run.skipped:
        return
    copy_stats(report, limiter, run)
    path = store.state_dir / "fetch-failures.json"
    atomic_write_json(path, report.to_dict())
    uncovered = sorted({s for b in run.skipped for s in b.symbols})
    raise FetchError(
        f"fetch.deadline_seconds: the fetch passed its {run.deadline.seconds:g} s deadline "
        f"with {len(run.skipped)} of {total} request groups not completed "
        f"({len(uncovered)} symbol(s) not covered); nothing was published (completed "
        f"batches are checkpointed: run again to resume)",
        missing_symbols=uncovered, report=report.to_dict())


def _fail(store: Store, report: FetchReport, total: int) -> None:
    path = store.state_dir / "fetch-failures.json"
    atomic_write_json(path, report.to_dict())
    uncovered = sorted({s for f in report.failures for s in f.symbols})
    first = report.failures[0]
    raise FetchError(
        f"{len(report.failures)} of {total} request groups failed, {len(uncovered)} symbol(s) "
        f"not covered; first: {first.batch}: {first.error}; nothing was published "
        f"(per-batch report: {path})", missing_symbols=uncovered, report=report.to_dict())
