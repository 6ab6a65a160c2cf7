"""Running a fetch plan's batches of daily bars (`aurora.fetch.stage` calls it): each batch
resumed from its checkpoint or asked of the client, checked (unrequested symbols,
duplicates: `FetchQuarantine`), checkpointed, and counted; a failed batch is recorded and
the others go on; the circuit breaker on HTTP 429 storms and the fetch's deadline stop
new request groups (the contract is in `aurora.fetch.stage`'s docstring).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import polars as pl

from aurora.deadline import Deadline, DeadlineExceeded
from aurora.errors import CredentialsError, FetchError
from aurora.fetch.batches import BatchRequest, Checkpoint
from aurora.fetch.client import AlpacaBarsClient
from aurora.fetch.outcomes import RateLimitWaitExceeded, refused_by_rate_limit
from aurora.fetch.quarantine import FetchQuarantine
from aurora.fetch.ratelimit import RateLimiter
from aurora.fetch.summary import BatchFailure, FetchReport
from aurora.progress import Steps

TIMEFRAME = "1Day"


@dataclass
class BatchRun:
    """Mutable state of one run shared by the batch workers."""

    client: AlpacaBarsClient
    checkpoint: Checkpoint
    steps: Steps
    adjustment: str
    feed: str
    deadline: Deadline
    frames: dict[str, pl.DataFrame] = field(default_factory=dict)
    failures: list[BatchFailure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: list[BatchRequest] = field(default_factory=list)  # not completed: fetch deadline
    # circuit breaker: the first group that gave up on the rate limit (HTTP 429 storm), and
    # the groups not started after it
    refused: BatchFailure | None = None
    refused_why: str = ""
    halted: list[BatchRequest] = field(default_factory=list)
    resumed: int = 0
    fetched_bars: int = 0
    quarantine: FetchQuarantine | None = None  # this run's quarantine decisions


def _check_batch(request: BatchRequest, frame: pl.DataFrame, warnings: list[str],
                 quarantine: FetchQuarantine) -> pl.DataFrame:
    """Unrequested symbols and duplicates in one batch's bars (fetched, or resumed from the
    checkpoint holding them as served): a conflicting duplicate quarantines its symbol, the
    rest of the batch is kept (`FetchQuarantine.resolve_duplicates`)."""
    extra = sorted(set(frame.get_column("symbol").unique()) - set(request.symbols))
    if extra:
        warnings.append(f"batch {request.label()}: ignored bars of unrequested symbols {extra}")
        frame = frame.filter(pl.col("symbol").is_in(list(request.symbols)))
    return quarantine.resolve_duplicates(request.label(), frame, warnings)


def run_batch(run: BatchRun, request: BatchRequest) -> None:
    frame = run.checkpoint.load(request)
    if frame is not None:
        run.resumed += 1
    elif run.refused is not None:
        run.halted.append(request)  # never started: the server keeps refusing with 429
        run.steps.step()
        return
    elif run.deadline.expired():
        run.skipped.append(request)  # never started: the whole fetch is out of time
        run.steps.step()
        return
    else:
        try:
            frame = run.client.get_bars(
                list(request.symbols), request.start, request.end, timeframe=TIMEFRAME,
                adjustment=run.adjustment, feed=run.feed,
            )
        except CredentialsError:
            raise
        except FetchError as exc:
            if isinstance(exc, DeadlineExceeded) and exc.deadline is run.deadline:
                run.skipped.append(request)  # cut short by the whole fetch's deadline
            else:
                failure = BatchFailure(request.label(), request.symbols, str(exc))
                run.failures.append(failure)
                if refused_by_rate_limit(exc) and run.refused is None:
                    run.refused = failure  # trips the circuit breaker: no new group
                    run.refused_why = (
                        f"past the {run.client.max_rate_limit_wait_seconds:g} s one request "
                        "may wait (fetch.max_rate_limit_wait_seconds)"
                        if isinstance(exc, RateLimitWaitExceeded) else
                        f"after its last retry (fetch.max_retries = "
                        f"{run.client.policy.max_retries})")
            run.steps.step()
            return
        run.checkpoint.save(request, frame)  # the bars as served: a resumed run decides alike
        run.fetched_bars += frame.height
    assert run.quarantine is not None
    run.frames[request.key] = _check_batch(request, frame, run.warnings, run.quarantine)
    run.steps.step()


def run_batches(run: BatchRun, batches: Sequence[BatchRequest], concurrency: int) -> None:
    if concurrency <= 1 or len(batches) <= 1:
        for request in batches:
            run_batch(run, request)
        return
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="fetch") as pool:
        futures = [pool.submit(run_batch, run, request) for request in batches]
        for future in futures:
            future.result()  # re-raises CredentialsError (and bugs) from the workers


def copy_stats(report: FetchReport, limiter: RateLimiter, run: BatchRun) -> None:
    stats = run.client.stats.to_dict()
    report.requests, report.successful_requests = stats["requests"], stats["successful"]
    report.retries, report.rate_limited = stats["retries"], stats["rate_limited"]
    report.statuses, report.backoff_seconds = stats["statuses"], stats["backoff_seconds"]
    report.rate_limit_wait_seconds = limiter.waited_seconds
    report.batches_resumed, report.bars_fetched = run.resumed, run.fetched_bars
    report.failures = run.failures
    report.warnings.extend(run.warnings)
