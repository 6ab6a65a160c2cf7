"""`aurora fetch --timeframe 1Min` (also 5Min, 15Min, 30Min, 1Hour): intraday bars into the
intraday store of that timeframe (`aurora.intraday.store`).

The algorithm:
1. **Window.** Sessions from `start` to `end` (defaults: the stored last day minus
   `intraday.overlap_sessions`, or `intraday.history_sessions` back, to the last completed
   session). Raw bars, the configured feed, like the daily fetch.
2. **Plan.** Symbols in batches of `fetch.batch_size`; each batch's sessions in runs short
   enough that one request group asks for at most `intraday.bars_per_request` bars (counting
   a full 04:00-20:00 day of bars), which bounds the memory of the fetch. The group is one
   `AlpacaBarsClient.get_bars` call: the same paging, rate limiter, retries and deadlines
   as the daily fetch.
3. **Checkpoints.** Each completed group is saved (Parquet plus a verified index entry,
   `aurora.fetch.batches.Checkpoint`) under `state/fetch-intraday/<plan id>/`, then dropped
   from memory; a killed or failed fetch, run again the same day with the same plan,
   resumes from them. A failed group fails the fetch after every other group was tried,
   naming the groups; nothing is published then.
4. **Validate and publish.** Within one transaction of the intraday store, run by run of
   sessions: read those groups back, check them (`aurora.intraday.validate`) against the
   raw daily bars of the main store when it holds them, and write one part per date. The
   version is published only when every run has been written; its `validation.json`
   holds the findings and `fetch_report.json` the counters.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import polars as pl

from aurora.atomic import atomic_write_json
from aurora.calendar import last_completed_session, previous_session, sessions, sessions_back
from aurora.config import AuroraConfig
from aurora.errors import ConfigError, CredentialsError, FetchError, StoreError
from aurora.fetch.batches import BatchRequest, Checkpoint, clean_checkpoints, plan_id
from aurora.fetch.client import AlpacaBarsClient
from aurora.fetch.pages import RECENT_SIP_DELAY
from aurora.fetch.ratelimit import RateLimiter
from aurora.fetch.source import PriceSource
from aurora.intraday.daily import summarizer
from aurora.intraday.store import (
    DATASET,
    bar_minutes,
    check_intraday_timeframe,
    intraday_store,
    stored_days,
    write_days,
)
from aurora.intraday.validate import IntradayValidation, validate_intraday
from aurora.progress import Progress, Steps
from aurora.redaction import redact_url
from aurora.schemas import INTRADAY_SCHEMA
from aurora.store.bars import read_prices
from aurora.store.versions import Store
from aurora.universe import UniverseLike, as_universe, resolve_universe

VALIDATION = "validation.json"
FETCH_REPORT = "fetch_report.json"
EXTENDED_DAY_MINUTES = 16 * 60  # 04:00 to 20:00 New York: the most bars a day can have
EXTENDED_END = dt.time(20, 0)
NEW_YORK = ZoneInfo("America/New_York")


@dataclass
class IntradayReport:
    """What one intraday fetch did; `summary_lines()` for a person."""

    timeframe: str
    symbols: int = 0
    start: dt.date | None = None
    end: dt.date | None = None
    sessions: int = 0
    groups: int = 0
    resumed: int = 0
    bars: int = 0
    requests: int = 0
    minimum_requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    rate_limit_wait_seconds: float = 0.0
    elapsed_seconds: float = 0.0
    version: str | None = None
    daily_checked: bool = False
    validation: IntradayValidation = field(default_factory=IntradayValidation)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.pop("validation")
        out["start"] = self.start.isoformat() if self.start else None
        out["end"] = self.end.isoformat() if self.end else None
        out["warnings"] = self.validation.warnings()
        return out

    def summary_lines(self) -> list[str]:
        lines = [
            f"stored {self.bars:,} {self.timeframe} bars: {self.symbols} symbols x "
            f"{self.sessions} sessions ({self.start}..{self.end}) in version {self.version}",
            f"requests: {self.requests} for {self.groups} request groups ({self.resumed} "
            f"resumed from a checkpoint); the minimum at 10,000 bars a page is "
            f"{self.minimum_requests}; {self.retries} retried, {self.rate_limited} "
            f"rate-limited, {self.rate_limit_wait_seconds:.1f} s waited on the rate limit; "
            f"{self.elapsed_seconds:.1f} s in all",
        ]
        if not self.daily_checked:
            lines.append("not checked against daily bars: the main store holds none for "
                         "this window (run `aurora fetch` first)")
        lines += [f"warning: {w}" for w in self.validation.warnings()]
        return lines


def plan_groups(symbols: Sequence[str], days: Sequence[dt.date], timeframe: str,
                batch_size: int, bars_per_request: int) -> list[list[BatchRequest]]:
    """Request groups by run of sessions: each run's list holds one group per batch of
    symbols, each group asking for at most `bars_per_request` bars of full 04:00-20:00
    days (at least one session per group)."""
    per_day = math.ceil(EXTENDED_DAY_MINUTES / bar_minutes(timeframe))
    batches = [tuple(symbols[i:i + batch_size]) for i in range(0, len(symbols), batch_size)]
    widest = max((len(b) for b in batches), default=1)
    run_length = max(1, bars_per_request // (widest * per_day))
    runs = [days[i:i + run_length] for i in range(0, len(days), run_length)]
    purpose = f"intraday {timeframe}"
    return [[BatchRequest(batch, run[0], run[-1], purpose) for batch in batches]
            for run in runs]


def last_complete_day(feed: str, now: dt.datetime | None = None) -> dt.date:
    """The latest session whose intraday bars are all served: its extended hours end at
    20:00 New York, and a free plan's SIP data is 15 minutes late (16 with a margin)."""
    now = now or dt.datetime.now(dt.UTC)
    day = last_completed_session(now)
    delay = RECENT_SIP_DELAY if feed == "sip" else dt.timedelta(0)
    if now < dt.datetime.combine(day, EXTENDED_END, NEW_YORK) + delay:
        day = previous_session(day)
    return day


def _window(config: AuroraConfig, store: Store, start: dt.date | None, end: dt.date | None
            ) -> tuple[dt.date, dt.date]:
    last = last_complete_day(config.fetch.feed)
    end = end or last
    if end > last:
        raise ConfigError(f"--end {end} is after {last}, the last NYSE session whose "
                          "intraday bars are complete (extended hours end at 20:00 New "
                          "York); `aurora stream` keeps today's minutes")
    if start is None:
        version = store.current_version()
        held = list(stored_days(store.manifest(version))) if version else []
        ic = config.intraday
        start = (sessions_back(held[-1], ic.overlap_sessions) if held and held[-1] <= end
                 else sessions_back(end, ic.history_sessions - 1))
    if start > end:
        raise ConfigError(f"--start {start} is after --end {end}")
    return start, end


def _daily(config: AuroraConfig, start: dt.date, end: dt.date,
           symbols: Sequence[str]) -> pl.DataFrame | None:
    main = Store(config.data_dir)
    if main.current_version() is None:
        return None
    try:
        daily = read_prices(main, start=start, end=end, symbols=symbols)
    except StoreError:
        return None
    return daily if daily.height else None


def fetch_intraday(
    config: AuroraConfig,
    timeframe: str,
    *,
    universe: UniverseLike | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    progress: Progress | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
    transport: httpx.BaseTransport | None = None,
) -> IntradayReport:
    """Fetch `timeframe` bars of the universe for sessions start..end and publish them as a
    new version of the intraday store (module docstring). Raises ConfigError,
    CredentialsError, FetchError (naming the failed groups), DataValidationError (naming
    the first bad bar) or StoreError; nothing is published then, and checkpoints of the
    completed groups are kept for the next run."""
    started = time.perf_counter()
    check_intraday_timeframe(timeframe)
    config.alpaca.require_credentials()
    fc, ic = config.fetch, config.intraday
    store = intraday_store(config.data_dir, timeframe)
    main = Store(config.data_dir)
    chosen = as_universe(universe) if universe is not None else resolve_universe(config, main)
    symbols = list(dict.fromkeys(chosen.symbols))
    start, end = _window(config, store, start, end)
    days = sessions(start, end)
    if not days:
        raise ConfigError(f"no NYSE session between {start} and {end}")
    runs = plan_groups(symbols, days, timeframe, fc.batch_size, ic.bars_per_request)
    groups = [g for run in runs for g in run]
    params = {"timeframe": timeframe, "feed": fc.feed, "adjustment": "raw",
              "source": redact_url(config.alpaca.data_url, keep_path=True),
              "day": dt.datetime.fromtimestamp(clock(), dt.UTC).date().isoformat()}
    checkpoint = Checkpoint(main.state_dir / "fetch-intraday" / plan_id(groups, params))
    clean_checkpoints(checkpoint.directory.parent, checkpoint.directory)
    limiter = RateLimiter(fc.rate_limit_per_minute, state_path=main.state_dir / "ratelimit.json",
                          clock=clock, sleep=sleep)
    report = IntradayReport(timeframe, symbols=len(symbols), start=days[0], end=days[-1],
                            sessions=len(days), groups=len(groups))
    failures: list[str] = []
    steps = Steps(progress, f"fetch {timeframe} bars", len(groups))
    client = AlpacaBarsClient.from_config(config, limiter=limiter, transport=transport,
                                          sleep=sleep)
    with client:
        for group in groups:
            if checkpoint.load(group) is not None:
                report.resumed += 1
            else:
                try:
                    frame = client.get_bars(list(group.symbols), group.start, group.end,
                                            timeframe=timeframe, adjustment="raw",
                                            feed=fc.feed)
                except CredentialsError:
                    raise
                except FetchError as exc:
                    failures.append(str(exc))
                    steps.step()
                    continue
                checkpoint.save(group, frame.select(list(INTRADAY_SCHEMA)))
                report.minimum_requests += math.ceil(frame.height / fc.page_limit) or 1
                del frame
            steps.step()
    stats = client.stats.to_dict()
    report.requests, report.retries = stats["requests"], stats["retries"]
    report.rate_limited = stats["rate_limited"]
    report.rate_limit_wait_seconds = limiter.waited_seconds
    if failures:
        more = f" (+{len(failures) - 1} more)" if len(failures) > 1 else ""
        raise FetchError(f"{len(failures)} of {len(groups)} {timeframe} request groups "
                         f"failed, nothing published; run again to resume the "
                         f"{len(groups) - len(failures)} completed: {failures[0]}{more}")
    _publish(config, store, runs, checkpoint, report, symbols, params, progress)
    checkpoint.clear()
    report.elapsed_seconds = time.perf_counter() - started
    return report


def _publish(config: AuroraConfig, store: Store, runs: list[list[BatchRequest]],
             checkpoint: Checkpoint, report: IntradayReport, symbols: list[str],
             params: dict[str, Any], progress: Progress | None) -> None:
    timeframe = report.timeframe
    steps = Steps(progress, f"validate {timeframe} bars", len(runs))
    base = store.current_version()
    source = PriceSource.of(config)
    with store.transaction(f"fetch-{timeframe.lower()}", base=base, params={
            **params, "universe": symbols, "start": str(report.start), "end": str(report.end),
            "source_url": source.url, "dataset": DATASET}) as txn:
        checked = False
        for run in runs:
            paths = [checkpoint.verified_path(group) for group in run]
            if any(p is None for p in paths):
                raise StoreError(f"{checkpoint.directory}: a checkpoint of "
                                 f"{run[0].start}..{run[-1].end} changed while the fetch ran;"
                                 " run again")
            run_start, run_end = run[0].start, run[0].end
            daily = _daily(config, run_start, run_end, symbols)
            checked = checked or daily is not None
            for day in sessions(run_start, run_end):  # one day of every batch at a time
                bars = pl.scan_parquet([p for p in paths if p is not None]).filter(
                    pl.col("date") == day).collect()
                if bars.height == 0:
                    continue
                day_daily = daily.filter(pl.col("date") == day) if daily is not None else None
                where = f"{timeframe} bars of {day}"
                found = validate_intraday(bars, day_daily, timeframe, config.intraday, where)
                report.validation.merge(found)
                write_days(txn, bars, summarizer(timeframe))
                report.bars += bars.height
            steps.step()
        report.daily_checked = checked
        atomic_write_json(txn.path(VALIDATION), report.validation.to_dict())
        txn.describe(VALIDATION)
        atomic_write_json(txn.path(FETCH_REPORT), report.to_dict())
        txn.describe(FETCH_REPORT)
    report.version = store.current_version()
