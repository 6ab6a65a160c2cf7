"""One session's stream, from the first connection to the published minutes: what
`aurora stream` runs.

1. **Recover.** The day's journal (`state/stream/<day>.jsonl`) is replayed, so a run
   killed earlier the same day loses no minute it had received. Journals of other days
   are removed once their day is published.
2. **Stream.** `StreamSession` subscribes the universe to bars, updated bars, daily bars
   and trading statuses on `stream.url` (`{feed}` from `fetch.feed`), with the watchdog
   (which leaves a halted symbol alone), the backoff and the gap fill: after every
   (re)connection, the minutes between the latest held and the first streamed (and the
   last UPDATE_MINUTES held, whose updates may be lost) are fetched over REST
   (`AlpacaBarsClient.get_bars(..., between=...)`, `timeframe=1Min`, raw, the same
   feed), from 04:00 New York when nothing is held yet; the fills run in the background
   while the socket is read. Messages of another day are not kept. It ends when the wall
   clock reaches `stream.end_time` (New York) on the day, or when a minute at or after it
   has been received; a past session ends by its bars alone (a replay), or as soon as the
   server sends a later day's (Alpaca's live stream), the rest of the day then being
   fetched over REST by the fill at the end.
3. **Pre-close prediction.** When the stream reaches `stream.cut_time` (15:45 New York;
   by the wall clock on a live day, then `stream.cut_grace_seconds` more for the last
   minute's bars; by the bars on a replay), the minutes before the cut it still lacks (a
   restart, a late bar) are filled over REST, and a snapshot of the book ranks the universe
   for today's close (`aurora.predict.preclose_api.predict_preclose`, which reads only
   minutes ended by the cut) in a thread, publishing predictions-preclose.json in the main
   store, while the stream goes on. The symbols halted at the cut instant (by the statuses
   received) are named in the file's `halted_at_cut` and in the report; they stay ranked.
   Skipped, and said in the report, when the main store holds no features yet; any
   failure raises a `preclose_failed` alert and the stream and its publication go on. At
   the end, the minutes since the latest held are filled over REST too (an outage at the
   end of the session).
4. **Publish.** The day's minutes are checked (`aurora.intraday.validate`: the error
   rules, and gaps; the REST daily bar is not known yet), compared with each symbol's last
   streamed daily bar (`daily_check.daily_bar_findings`: findings, not errors), and
   written as the day's part of the 1Min intraday store, in a new version. The session's
   halts (from the statuses) are in the report. The journal stays until another day's
   run, so a run started again the same day publishes every minute again, not fewer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import polars as pl

from aurora.atomic import atomic_write_json
from aurora.calendar import is_session
from aurora.config import AuroraConfig
from aurora.errors import ConfigError, first_line
from aurora.fetch.client import AlpacaBarsClient
from aurora.fetch.ratelimit import RateLimiter
from aurora.intraday.daily import summarizer
from aurora.intraday.store import intraday_store, stored_days, write_days
from aurora.intraday.validate import IntradayValidation, bad_bars, validate_intraday
from aurora.schemas import INTRADAY_SCHEMA
from aurora.store.datasets import has_dataset
from aurora.store.files import FEATURES, FEATURES_DATASET
from aurora.store.versions import Store
from aurora.stream.backoff import Backoff
from aurora.stream.client import StreamFatal, StreamReport, StreamSession, StreamSettings
from aurora.stream.daily_check import daily_bar_findings
from aurora.stream.journal import Journal
from aurora.stream.market import DailyBar, Halt
from aurora.universe import UniverseLike, as_universe, resolve_universe

log = logging.getLogger(__name__)
NEW_YORK = ZoneInfo("America/New_York")
TIMEFRAME = "1Min"
EXTENDED_START = dt.time(4, 0)
EXTENDED_END = dt.time(20, 0)
UPDATE_MINUTES = 2  # the minutes before a disconnect whose updated bars may be missed
STREAM_REPORT = "stream_report.json"


@dataclass
class StreamDayReport:
    """What one `aurora stream` run did; `summary_lines()` for a person."""

    day: dt.date
    symbols: int
    stream: StreamReport
    recovered: int = 0
    bars: int = 0
    version: str | None = None
    validation: IntradayValidation = field(default_factory=IntradayValidation)
    preclose: str = "not reached"  # what became of the pre-close prediction
    dropped: list[str] = field(default_factory=list)  # streamed bars breaking an error rule
    halts: list[Halt] = field(default_factory=list)  # from the streamed statuses
    halted_at_cut: list[str] = field(default_factory=list)
    daily_findings: list[str] = field(default_factory=list)  # minutes against daily bars

    def filled_bars(self) -> int:
        return sum(n for _, _, n in self.stream.gaps_filled)

    def to_dict(self) -> dict[str, Any]:
        s = self.stream
        return {"day": self.day.isoformat(), "symbols": self.symbols, "bars": self.bars,
                "recovered_messages": self.recovered, "connections": s.connections,
                "reconnect_delays": [round(d, 3) for d in s.delays],
                "silent_alerts": s.silent_alerts, "frames": s.frames,
                "bar_messages": s.bar_messages, "bad_messages": s.bad_messages,
                "server_errors": [list(e) for e in s.server_errors],
                "gaps_filled": [list(g) for g in s.gaps_filled],
                "resubscribed": [[m, q] for m, q in s.resubscribed],
                "gap_failures": s.gap_failures, "version": self.version,
                "preclose": self.preclose, "dropped_bars": self.dropped,
                "status_messages": s.status_messages,
                "halts": [h.to_dict() for h in self.halts],
                "halted_at_cut": self.halted_at_cut,
                "daily_bar_findings": self.daily_findings,
                "warnings": self.validation.warnings()}

    def summary_lines(self) -> list[str]:
        s = self.stream
        delays = ", ".join(f"{d:.2f}" for d in s.delays[:8]) or "none"
        lines = [
            f"stream of {self.day}: {self.bars:,} minute bars of {self.symbols} symbols "
            f"published in version {self.version}",
            f"{s.connections} connection(s), reconnect delays (s): {delays}; {s.frames} "
            f"frames, {s.bar_messages} bar messages, {self.recovered} replayed from the "
            f"journal, {self.filled_bars()} filled over REST in {len(s.gaps_filled)} gap(s)",
        ]
        if s.resubscribed:
            names = sorted({n for _, quiet in s.resubscribed for n in quiet})
            lines.append(f"resubscribed {len(names)} symbol(s) that went quiet: "
                         f"{', '.join(names[:10])}")
        if self.halts:
            lines.append(f"halted: {'; '.join(h.line() for h in self.halts[:10])}"
                         + (f"; +{len(self.halts) - 10} more" if len(self.halts) > 10 else ""))
        if s.silent_alerts or s.gap_failures or s.bad_messages:
            lines.append(f"watchdog alerts: {s.silent_alerts}; unfilled gaps: "
                         f"{s.gap_failures}; malformed messages skipped: {s.bad_messages}")
        lines.append(f"pre-close prediction: {self.preclose}")
        if self.dropped:
            lines.append(f"warning: {len(self.dropped)} streamed bar(s) broke a bar rule "
                         f"and were left out: {', '.join(self.dropped[:5])}")
        lines += [f"warning: {w}" for w in self.validation.warnings()]
        lines += [f"finding: stored minutes against the streamed daily bar: {f}"
                  for f in self.daily_findings[:10]]
        if len(self.daily_findings) > 10:
            lines.append(f"finding: +{len(self.daily_findings) - 10} more disagreement(s) "
                         "with the streamed daily bars (stream_report.json)")
        return lines


def stream_day(now: dt.datetime | None = None) -> dt.date:
    """Today's New York date (the session a stream started now belongs to)."""
    return (now or dt.datetime.now(dt.UTC)).astimezone(NEW_YORK).date()


def journal_for(data_dir: Path, day: dt.date) -> Journal:
    """The day's journal. The journals of other days whose minutes are published are
    removed; one whose day was never published (a run killed that day and not restarted)
    is kept: `aurora stream --day D` publishes it."""
    directory = Store(data_dir).state_dir / "stream"
    if directory.is_dir():
        store = intraday_store(data_dir, TIMEFRAME)
        version = store.current_version()
        published = set(stored_days(store.manifest(version))) if version else set()
        for old in directory.glob("*.jsonl"):
            if old.stem != day.isoformat() and _day_of(old.stem) in published:
                old.unlink(missing_ok=True)
    return Journal(directory / f"{day.isoformat()}.jsonl")


def _day_of(stem: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(stem)
    except ValueError:
        return None


def stream_feed(url: str, default: str) -> str:
    """The feed a stream URL ends in (`.../v2/iex`: iex, sip or delayed_sip), else
    `default`: a stream's REST fills ask its own feed (a free plan streaming IEX would be
    refused the recent minutes of SIP)."""
    last = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    return last if last in ("iex", "sip", "delayed_sip") else default


def rest_filler(client: AlpacaBarsClient, symbols: list[str], day: dt.date, feed: str,
                batch_size: int = 50) -> Callable[[dt.datetime | None, dt.datetime], list[dict]]:
    """`fill_gap` for `StreamSession`: the 1Min bars from the last UPDATE_MINUTES minutes
    held through `after` (None: from 04:00 New York on `day`) to just before `before`, as
    updated-bar messages: the minutes missed while away, and the last ones held, whose
    updated bars (due about 30 s after their minute) may have been missed too. As updated
    bars they replace a held first version (they carry at least its volume), and a later
    streamed update still replaces them. One request group per `batch_size` symbols (a
    URL naming the whole of a large universe would be refused)."""
    minute = dt.timedelta(minutes=1)

    def fill(after: dt.datetime | None, before: dt.datetime) -> list[dict]:
        first = (after - (UPDATE_MINUTES - 1) * minute if after is not None
                 else dt.datetime.combine(day, EXTENDED_START, NEW_YORK))
        last = before - minute
        if last < first:
            return []
        frames = [client.get_bars(symbols[i:i + batch_size], day, day, timeframe=TIMEFRAME,
                                  adjustment="raw", feed=feed, between=(first, last))
                  for i in range(0, len(symbols), batch_size)]
        frame = pl.concat(frames, how="vertical_relaxed")
        return [{"T": "u", "S": r["symbol"], "t": r["timestamp"], "o": r["open"],
                 "h": r["high"], "l": r["low"], "c": r["close"], "v": r["volume"],
                 "n": r["trade_count"], "vw": r["vwap"]}
                for r in frame.iter_rows(named=True)]

    return fill


def run_stream_day(
    config: AuroraConfig,
    *,
    universe: UniverseLike | None = None,
    day: dt.date | None = None,
    until: Callable[[], bool] | None = None,
    on_alert: Callable[[str, str], None] = lambda rule, message: None,
    transport: httpx.BaseTransport | None = None,
    rng: random.Random | None = None,
    preclose: bool = True,
) -> StreamDayReport:
    """Stream `day` (default: today in New York) and publish its minutes (module
    docstring). `until` replaces the end condition (tests). Raises ConfigError (not a
    session, no credentials), StreamFatal (a fatal server error, the journal not
    writable), DataValidationError or StoreError; the journal keeps what was received."""
    key, secret = config.alpaca.require_credentials()
    day = day or stream_day()
    if not is_session(day):
        raise ConfigError(f"{day} is not an NYSE session: nothing to stream")
    main = Store(config.data_dir)
    chosen = as_universe(universe) if universe is not None else resolve_universe(config, main)
    symbols = list(dict.fromkeys(chosen.symbols))
    sc, fc = config.stream, config.fetch
    end_at = dt.datetime.combine(day, sc.end_time, NEW_YORK)
    url = sc.url.format(feed=fc.feed)
    settings = StreamSettings(url, key, secret, tuple(symbols),
                              use_msgpack=sc.use_msgpack, watchdog_seconds=sc.watchdog_seconds,
                              symbol_silence_minutes=sc.symbol_silence_minutes)
    limiter = RateLimiter(fc.rate_limit_per_minute, state_path=main.state_dir / "ratelimit.json")
    client = AlpacaBarsClient.from_config(config, limiter=limiter, transport=transport)
    session = StreamSession(
        settings, journal_for(config.data_dir, day),
        backoff=Backoff(base=sc.backoff_base_seconds, cap=sc.backoff_max_seconds,
                        rng=rng or random.Random()),
        on_alert=on_alert, fill_gap=rest_filler(client, symbols, day,
                                                 stream_feed(url, fc.feed), fc.batch_size),
        day=day)

    # a past session ends by its bars alone (a replay), or once the server streams a later
    # day (Alpaca's live stream): what it lacks is then filled over REST at the end
    live = day >= stream_day()

    def reached(instant: dt.datetime, *, later_day_ends: bool = False) -> Callable[[], bool]:
        def check() -> bool:
            newest = session.book.newest
            return ((live and dt.datetime.now(dt.UTC) >= instant)
                    or (newest is not None and newest >= instant)
                    or (later_day_ends and not live and session.report.later_day))
        return check

    report = StreamDayReport(day, len(symbols), session.report)
    # a past day's cut is reached by its bars only: a live stream of a later day does not
    # rank an old day (and overwrite the latest pre-close file)
    stop = until or reached(end_at, later_day_ends=True)
    cut, cut_at = None, end_at
    if preclose:
        from aurora.predict.preclose import cut_instant  # deferred: the feature engine

        cut_at = cut_instant(day, sc.cut_time)
        cut = reached(cut_at)
    else:
        report.preclose = "not asked"

    async def stream_and_rank() -> None:
        streaming = asyncio.create_task(session.run(stop))
        if cut is not None:
            while not streaming.done() and not (session.started and cut()):
                await asyncio.sleep(0.1)
            if session.started and cut():
                if live:  # the bars of the minute before the cut arrive just after it
                    await asyncio.sleep(sc.cut_grace_seconds)
                report.halted_at_cut = sorted(session.market.halted_at(cut_at))
                report.preclose = await _rank_at_cut(config, session, day, chosen, cut_at,
                                                     on_alert, report.halted_at_cut)
        await streaming
        if cut is not None and report.preclose == "not reached" and session.report.later_day:
            report.preclose = (f"not reached: the stream of {day} ended at a later day's "
                               "first message, before its cut")
        # an outage at the end is filled too; a past day is filled to its extended close
        await session.fill_before(end_at if live else dt.datetime.combine(
            day, EXTENDED_END, NEW_YORK))

    with client:
        asyncio.run(stream_and_rank())
    report.recovered = session.report.recovered
    report.halts = session.market.halts()
    minutes = session.book.frame()
    _publish(config, day, minutes, report, session.market.daily)
    return report


async def _rank_at_cut(config: AuroraConfig, session: StreamSession, day: dt.date,
                       universe: Any, cut_at: dt.datetime,
                       on_alert: Callable[[str, str], None], halted: list[str]) -> str:
    """Rank for today's close from the minutes held at the cut (module docstring, 3): the
    minutes before the cut not held yet (a restart, a late bar) are first filled over
    REST; the ranking runs in a thread on a snapshot of the book while the stream goes on.
    `halted`: the symbols halted at the cut, named in the file. Any failure is an alert
    and a line in the report: the stream and its publication go on."""
    store = Store(config.data_dir)
    version = store.current_version()
    if version is None or not has_dataset(store.manifest(version), FEATURES_DATASET,
                                          legacy=FEATURES):
        return "skipped: the store holds no features (run `aurora build` first)"
    try:
        await session.fill_before(cut_at)
        await session.settle()  # a watchdog fill started meanwhile
        minutes = session.book.frame()
        return await asyncio.to_thread(_preclose, config, store, minutes, day, universe,
                                       halted)
    except StreamFatal:
        raise  # the journal cannot be written: the session stops
    except Exception as exc:  # any failure: a failed ranking must not lose the day
        log.warning("pre-close prediction of %s failed", day, exc_info=True)
        first = first_line(exc, 300)
        on_alert("preclose_failed", f"the pre-close prediction of {day} failed: {first}")
        return f"failed: {first}"


def _preclose(config: AuroraConfig, store: Store, minutes: pl.DataFrame, day: dt.date,
              universe: Any, halted: list[str]) -> str:
    """Rank and publish; the report's line: the cut instant, the version, and the symbols
    halted at the cut (ranked nonetheless)."""
    from aurora.predict.preclose_api import predict_preclose  # deferred: LightGBM

    minutes = minutes.with_columns(
        date=pl.col("timestamp").dt.convert_time_zone(str(NEW_YORK)).dt.date())
    result = predict_preclose(store, config, minutes, day, universe=universe, halted=halted)
    named = result.document.get("halted_at_cut") or []
    return f"{result.document['as_of']}, version {result.version}" + (
        f"; halted at the cut (still ranked): {', '.join(named)}" if named else "")


def _publish(config: AuroraConfig, day: dt.date, minutes: pl.DataFrame,
             report: StreamDayReport, daily: dict[str, DailyBar]) -> None:
    """Check `minutes` (bars breaking a rule left out, gaps; against the last streamed
    `daily` bars: findings) and write them with the report as the day's part, in a new
    version."""
    bars = minutes.with_columns(
        date=pl.col("timestamp").dt.convert_time_zone(str(NEW_YORK)).dt.date()
    ).filter(pl.col("date") == day).select(list(INTRADAY_SCHEMA))
    where = f"stream minutes of {day}"
    bad = bars.filter(bad_bars(bars, TIMEFRAME))
    if bad.height:  # a streamed bar that breaks a rule is left out, not the whole day
        report.dropped = [f"{r['symbol']} {r['timestamp']:%H:%M}Z"
                          for r in bad.iter_rows(named=True)]
        bars = bars.filter(~bad_bars(bars, TIMEFRAME))
    report.validation = validate_intraday(bars, None, TIMEFRAME, config.intraday, where)
    report.daily_findings = daily_bar_findings(bars, daily, day, config.intraday)
    report.bars = bars.height
    store = intraday_store(config.data_dir, TIMEFRAME)
    started = time.perf_counter()
    with store.transaction("stream", base=store.current_version(),
                           params={"day": day.isoformat(), "bars": bars.height}) as txn:
        if bars.height:
            write_days(txn, bars, summarizer(TIMEFRAME))
        atomic_write_json(txn.path(STREAM_REPORT), {
            **report.to_dict(), "publish_seconds": round(time.perf_counter() - started, 3)})
        txn.describe(STREAM_REPORT)
    report.version = store.current_version()
