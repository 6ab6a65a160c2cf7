"""A session on Alpaca's market-data stream: connect, authenticate, subscribe, keep every
minute bar (and each symbol's running daily bar and trading statuses), and come back after
anything short of a fatal error.

The loop (`StreamSession.run`):
1. The journal is replayed into the minute book first: what a killed run had received is
   not lost (`journal`).
2. Connect (msgpack framing by default, as alpaca-py), expect `connected`, authenticate
   by message, subscribe the symbols to bars, updated bars, daily bars and statuses
   (`protocol.CHANNELS`).
3. Read frames. Each frame's well-formed bar and status messages are journaled (fsynced)
   before they enter the minute book or the `market.MarketState` (daily bars, statuses),
   so a `kill -9` loses at most the frame being read; a malformed one is counted and
   skipped, an undecodable frame reconnects, and a journal that cannot be written stops
   the session (StreamFatal). An error message is handled by its code
   (`protocol.classify_error`): fatal codes stop the session with a one-line StreamFatal
   naming the code; 406 waits for the slot; the others reconnect.
4. The watchdogs: a socket that stays open but sends no data for `watchdog_seconds` is
   closed and reconnected, and one `stream_silent` alert is raised per silent spell
   (control replies such as the subscription do not end a spell). A symbol that traded
   today and then sent no bar for `symbol_silence_minutes` of the regular session while
   others did (`silent_symbols`, by the latest minute held) is resubscribed, its minutes
   since its last bar are filled over REST (again, up to its first bar, once it is back),
   and one `stream_symbol_silent` alert is raised until it sends again (alpaca-py #740:
   an open socket that stops delivering). A symbol whose latest status is a halt is
   silent as expected and left alone; once resumed, its silence counts from the
   resumption.
5. A closed or failed connection reconnects after `Backoff.next_delay()` (capped
   exponential, full jitter); every delay is recorded in the report.
6. Gap fill: on every connection (the first included: a restart, or a start after the
   open), the first minute bar received is compared with the latest minute held; the
   minutes between them are asked of `fill_gap(after, before)` (the REST client, run in a
   thread), and the bars it returns are journaled and kept like streamed ones. The filler
   decides what to ask (`aurora.stream.day.rest_filler` also asks again for the last
   minutes held, whose updated bars may have been due while away). A failed fill raises
   one `stream_gap_unfilled` alert and the session goes on. Fills run in the background,
   one at a time: the socket is read meanwhile (a fill of a large universe takes many
   rate-limited requests); `fill_before` and the end of `run` wait for those running.
7. The session's day (`day`): data messages of another New York date are not kept, only
   counted (`report.other_days`), but for a status of an earlier date (a halt still in
   force); one of a later date sets `report.later_day` (the server streams a later
   session: a past day's stream has nothing more of it to send).
The session ends when `until()` is true (checked at least every SLICE_SECONDS, in every
wait). Keys never appear in messages, logs or the report.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from aurora.calendar import NEW_YORK as NEW_YORK_NAME
from aurora.calendar import OPEN_TIME
from aurora.errors import AuroraError
from aurora.stream.backoff import Backoff
from aurora.stream.journal import Journal
from aurora.stream.market import MarketState
from aurora.stream.minutes import MinuteBook
from aurora.stream.protocol import (
    BAR_TYPES,
    CHANNELS,
    STATUS_TYPE,
    TIMED_TYPES,
    StreamProtocolError,
    auth_message,
    classify_error,
    decode,
    encode,
    subscribe_message,
)


class StreamFatal(AuroraError):
    """The server refused in a way retrying cannot fix (bad keys, plan, feed), or the
    journal cannot be written (a bar that cannot be kept must not be read)."""


class _NoFrameDebug(logging.LoggerAdapter):
    """websockets logs every frame at DEBUG, the auth message (and so the secret)
    included: this connection's logger never says DEBUG."""

    def isEnabledFor(self, level: int) -> bool:
        return level > logging.DEBUG and self.logger.isEnabledFor(level)


_WS_LOG = _NoFrameDebug(logging.getLogger("aurora.stream.websocket"), {})
SLICE_SECONDS = 0.5  # how often a wait checks `until()`
NEW_YORK = ZoneInfo(NEW_YORK_NAME)
_MINUTE = dt.timedelta(minutes=1)


def silent_symbols(last_seen: dict[str, dt.datetime], newest: dt.datetime | None,
                   minutes: float, already: set[str],
                   since: dict[str, dt.datetime] | None = None) -> list[str]:
    """The symbols (sorted) whose latest bar is more than `minutes` of the regular session
    older than `newest`, the latest minute held of any symbol (the market's clock: a
    replay runs by it too), leaving out `already` flagged (or halted) ones. Nothing before
    09:30 New York counts: extended hours are thin, and a symbol is only watched once it
    traded; nor before a symbol's instant in `since` (its resumption after a halt)."""
    if newest is None:
        return []
    local = newest.astimezone(NEW_YORK)
    opening = dt.datetime.combine(local.date(), OPEN_TIME, NEW_YORK)
    if local < opening:
        return []
    limit = newest - dt.timedelta(minutes=minutes)
    since = since or {}
    return sorted(s for s, last in last_seen.items()
                  if s not in already and max(last, opening, since.get(s, opening)) < limit)


@dataclass(frozen=True)
class StreamSettings:
    """Where and what: the full WebSocket URL (`wss://stream.data.alpaca.markets/v2/iex`),
    the keys, the symbols; `watchdog_seconds` of silence before reconnecting."""

    url: str
    key: str
    secret: str
    symbols: tuple[str, ...]
    use_msgpack: bool = True
    watchdog_seconds: float = 120.0
    open_timeout: float = 10.0
    # the wait for the server's reply to our close frame: a silent socket may never send
    # it, and one still flooding frames queues it behind them (websockets' default: 10 s)
    close_timeout: float = 2.0
    # a symbol that sent bars today and then none for this many minutes of the regular
    # session, by the market's clock (the latest minute held), is resubscribed
    symbol_silence_minutes: float = 15.0

    def __repr__(self) -> str:  # never the secret
        return f"StreamSettings(url={self.url!r}, symbols={len(self.symbols)})"


@dataclass
class StreamReport:
    """What a session did: connections opened, reconnect delays (s), watchdog alerts,
    frames, bar messages (minute, updated and daily) and status messages read, and the
    errors the server sent (code, meaning)."""

    connections: int = 0
    delays: list[float] = field(default_factory=list)
    silent_alerts: int = 0
    frames: int = 0
    bar_messages: int = 0
    status_messages: int = 0
    bad_messages: int = 0
    server_errors: list[tuple[int, str]] = field(default_factory=list)
    gaps_filled: list[tuple[str, str, int]] = field(default_factory=list)  # after, before, bars
    recovered: int = 0  # messages replayed from the journal at the start
    gap_failures: int = 0
    resubscribed: list[tuple[str, list[str]]] = field(default_factory=list)  # minute, symbols
    other_days: int = 0  # data messages of another day than the session's, not kept
    later_day: bool = False  # one of them was of a later day


class _Reconnect(Exception):
    def __init__(self, slot_taken: bool = False) -> None:
        self.slot_taken = slot_taken


@dataclass
class StreamSession:
    """One stream session over `settings`, keeping minute bars in `book`, daily bars and
    statuses in `market`, and every kept message in `journal`."""

    settings: StreamSettings
    journal: Journal
    book: MinuteBook = field(default_factory=MinuteBook)
    market: MarketState = field(default_factory=MarketState)
    backoff: Backoff = field(default_factory=Backoff)
    on_alert: Callable[[str, str], None] = lambda rule, message: None
    clock: Callable[[], float] = time.monotonic
    report: StreamReport = field(default_factory=StreamReport)
    # (latest minute held or None, first minute of the new connection) -> bar messages
    fill_gap: Callable[[dt.datetime | None, dt.datetime], list[dict]] | None = None
    day: dt.date | None = None  # the session's New York date (None: keep every day's)
    started: bool = field(default=False, init=False)  # the journal has been replayed
    _fills: set[asyncio.Task] = field(default_factory=set, init=False)  # running fills
    _fill_lock: asyncio.Lock | None = field(default=None, init=False)
    # what a background fill raised that `_fill_locked` does not turn into an alert (the
    # journal failing: StreamFatal; a bug): raised by the socket loop and by `settle`
    _fill_error: BaseException | None = field(default=None, init=False)
    _last_seen: dict[str, dt.datetime] = field(default_factory=dict, init=False)
    _muted: set[str] = field(default_factory=set, init=False)  # resubscribed, not back yet
    # resubscribed symbol -> the minute its REST fill reached: filled again up to its first
    # streamed bar once it is back (the minutes between the fill and the resubscription)
    _refill: dict[str, dt.datetime] = field(default_factory=dict, init=False)
    _silent: bool = field(default=False, init=False)
    _gap_pending: bool = field(default=False, init=False)

    def recover(self) -> int:
        """Replay the journal into the book and the market state; the number of messages
        replayed (an entry they cannot take is counted in `report.bad_messages` and
        skipped)."""
        messages = self.journal.replay()
        for message in messages:
            try:
                self._check(message)
                self._apply(message)
            except StreamProtocolError:
                self.report.bad_messages += 1
        return len(messages)

    async def run(self, until: Callable[[], bool]) -> StreamReport:
        """The loop of the module docstring; StreamFatal on a fatal server error."""
        if not self.started:
            self.report.recovered = self.recover()
            self.started = True
        while not until():
            started = self.clock()
            slot_taken = False
            try:
                await self._connection(until)
            except _Reconnect as again:
                slot_taken = again.slot_taken
            except StreamProtocolError:
                self.report.bad_messages += 1  # an undecodable frame: start afresh
            except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError):
                pass  # the journal's own errors are StreamFatal, never caught here
            self.backoff.connected(self.clock() - started)
            if until():
                break
            delay = self.backoff.next_delay(slot_taken=slot_taken)
            self.report.delays.append(delay)
            await self._sleep(delay, until)
        await self.settle()
        return self.report

    async def settle(self) -> None:
        """Wait for the REST fills running in the background; raise what one of them
        raised other than the REST client's errors (which are `stream_gap_unfilled`
        alerts), finished earlier or now."""
        while self._fills:
            await asyncio.gather(*list(self._fills), return_exceptions=True)
        self._raise_fill_error()

    def _background(self, after: dt.datetime | None, before: dt.datetime) -> None:
        """Fill the minutes between `after` and `before` in the background (module
        docstring, 6)."""
        task = asyncio.create_task(self._fill_window(after, before))
        self._fills.add(task)
        task.add_done_callback(self._fill_done)

    def _fill_done(self, task: asyncio.Task) -> None:
        self._fills.discard(task)
        if not task.cancelled() and task.exception() is not None and self._fill_error is None:
            self._fill_error = task.exception()

    def _raise_fill_error(self) -> None:
        if self._fill_error is not None:
            error, self._fill_error = self._fill_error, None
            raise error

    def _of_day(self, messages: list[dict]) -> list[dict]:
        """`messages` without the data messages of another day than the session's
        (counted, module docstring 7)."""
        if self.day is None:
            return messages
        kept = []
        for message in messages:
            t = message.get("t")
            if message.get("T") in TIMED_TYPES and isinstance(t, dt.datetime):
                day = t.astimezone(NEW_YORK).date()
                carried = day < self.day and message.get("T") == STATUS_TYPE
                if day != self.day and not carried:  # a halt from before: still in force
                    self.report.other_days += 1
                    self.report.later_day |= day > self.day
                    continue
            kept.append(message)
        return kept

    async def _sleep(self, seconds: float, until: Callable[[], bool]) -> None:
        end = self.clock() + seconds
        while not until() and (left := end - self.clock()) > 0:
            await asyncio.sleep(min(left, SLICE_SECONDS))

    async def _connection(self, until: Callable[[], bool]) -> None:
        s = self.settings
        headers = {"Content-Type": "application/msgpack"} if s.use_msgpack else {}
        async with connect(s.url, additional_headers=headers, open_timeout=s.open_timeout,
                           close_timeout=s.close_timeout, max_size=None,
                           logger=_WS_LOG) as ws:
            self.report.connections += 1
            await self._expect(ws, "connected")
            # a refusal (406) may close the socket before this lands: read it anyway
            with contextlib.suppress(ConnectionClosed):
                await ws.send(encode(auth_message(s.key, s.secret),
                                     use_msgpack=s.use_msgpack))
            await self._expect(ws, "authenticated")
            with contextlib.suppress(ConnectionClosed):
                await ws.send(encode(subscribe_message(s.symbols, CHANNELS),
                                     use_msgpack=s.use_msgpack))
            quiet_since = self.clock()
            self._gap_pending = self.fill_gap is not None
            while not until():
                try:
                    raw = await asyncio.wait_for(ws.recv(), SLICE_SECONDS)
                except TimeoutError:
                    if self.clock() - quiet_since < s.watchdog_seconds:
                        continue
                    if not self._silent and not until():  # one alert per silent spell
                        self._silent = True
                        self.report.silent_alerts += 1
                        self.on_alert("stream_silent",
                                      f"the stream sent nothing for {s.watchdog_seconds:g} s"
                                      " while open: reconnecting")
                    raise _Reconnect() from None
                self._raise_fill_error()
                messages = self._of_day(decode(raw))
                if self._gap_pending:
                    self._fill(messages)
                if self._frame(messages):
                    quiet_since = self.clock()
                    self._silent = False
                    self._refill_returned(messages)
                    await self._watch_symbols(ws)

    def _refill_returned(self, messages: list[dict]) -> None:
        """A resubscribed symbol is back: fill its minutes from its last fill to this bar."""
        back = {}
        for m in messages:
            if m.get("T") == "b" and m.get("S") in self._refill and m["S"] not in back:
                back[m["S"]] = m["t"]
        for symbol, first in back.items():
            self._background(self._refill.pop(symbol), first)

    async def _watch_symbols(self, ws) -> None:
        """The content watchdog: symbols that went quiet while the others trade, and are
        not halted, are resubscribed, with one `stream_symbol_silent` alert per spell, and
        their missed minutes are filled over REST (module docstring)."""
        quiet = silent_symbols(self._last_seen, self.book.newest,
                               self.settings.symbol_silence_minutes,
                               self._muted | self.market.halted_at(), self.market.resumed())
        if not quiet:
            return
        s = self.settings
        self._muted.update(quiet)
        newest = self.book.newest
        assert newest is not None
        self.report.resubscribed.append((str(newest), quiet))
        self.on_alert("stream_symbol_silent",
                      f"{len(quiet)} subscribed symbol(s) sent no bar for "
                      f"{s.symbol_silence_minutes:g} minutes while others traded "
                      f"({', '.join(quiet[:10])}): resubscribed")
        with contextlib.suppress(ConnectionClosed):
            await ws.send(encode(subscribe_message(quiet, CHANNELS),
                                 use_msgpack=s.use_msgpack))
        if self.fill_gap is not None:
            self._background(min(self._last_seen[q] for q in quiet), newest)
            for q in quiet:
                self._refill[q] = newest - _MINUTE

    def _fill(self, messages: list[dict]) -> None:
        """Fill the minutes between the latest held and this connection's first bar, in the
        background."""
        first = min((m["t"] for m in messages if m.get("T") == "b"
                     and isinstance(m.get("t"), dt.datetime)), default=None)
        if first is None or self.fill_gap is None:
            return
        self._gap_pending = False
        self._background(*self._window(first))

    async def fill_before(self, before: dt.datetime) -> None:
        """Wait for the fills running, then ask `fill_gap` for the minutes between the
        latest held before `before` (None: nothing held) and `before`, in a thread, and
        journal and keep them: what the caller does at the cut and at the end (the stream
        goes on meanwhile). A failure raises one `stream_gap_unfilled` alert."""
        if self.fill_gap is None:
            return
        await self.settle()
        await self._fill_window(*self._window(before))

    def _window(self, before: dt.datetime) -> tuple[dt.datetime | None, dt.datetime]:
        """(after, before): from the latest minute held before `before` (and the last
        fill of symbols resubscribed and not back yet) to `before`."""
        newest = self.book.newest
        after = newest if newest is None or newest < before else before - _MINUTE
        if self._refill and after is not None:  # symbols resubscribed and not back yet
            after = min(after, *self._refill.values())
            self._refill.clear()
        return after, before

    async def _fill_window(self, after: dt.datetime | None, before: dt.datetime) -> None:
        if self._fill_lock is None:
            self._fill_lock = asyncio.Lock()
        async with self._fill_lock:  # one fill at a time: they share the rate limit
            await self._fill_locked(after, before)

    async def _fill_locked(self, after: dt.datetime | None, before: dt.datetime) -> None:
        assert self.fill_gap is not None
        try:
            bars = await asyncio.to_thread(self.fill_gap, after, before)
        except AuroraError as exc:  # the REST client's errors: said, the stream goes on
            self.report.gap_failures += 1
            self.on_alert("stream_gap_unfilled", f"the minutes after {after} and before "
                          f"{before} could not be fetched over REST: {exc}")
            return
        self._keep(bars)
        self.report.gaps_filled.append(
            (str(after.astimezone(dt.UTC)) if after is not None else "None",
             str(before.astimezone(dt.UTC)), len(bars)))

    async def _expect(self, ws, what: str) -> None:
        messages = decode(await asyncio.wait_for(ws.recv(), self.settings.open_timeout))
        for message in messages:
            if message.get("T") == "error":
                self._error(message)
            if message.get("T") == "success" and message.get("msg") == what:
                return
        raise _Reconnect()

    def _frame(self, messages: list[dict]) -> bool:
        """Journal, then keep, the frame's bars and statuses; True when it held data (what
        ends a silent spell: a `subscription` reply does not)."""
        self.report.frames += 1
        kept = []
        for message in messages:
            if message.get("T") not in TIMED_TYPES:
                continue
            try:
                self._check(message)
            except StreamProtocolError:
                self.report.bad_messages += 1
                continue
            kept.append(message)
        statuses = sum(m["T"] not in BAR_TYPES for m in kept)
        self.report.status_messages += statuses
        self.report.bar_messages += len(kept) - statuses
        self._keep(kept)
        for message in messages:
            if message.get("T") == "error":
                self._error(message)
        return any(m.get("T") not in ("success", "error", "subscription") for m in messages)

    def _keep(self, bars: list[dict]) -> None:
        """Journal (fsynced), then apply, checked bar and status messages."""
        try:
            self.journal.append(bars)
        except OSError as exc:
            raise StreamFatal(f"cannot write the stream journal {self.journal.path}: "
                              f"{exc}") from exc
        for message in bars:
            self._apply(message)

    def _check(self, message: dict) -> None:
        """StreamProtocolError for a bar or status message without what it needs."""
        self.book.check(message)
        self.market.check(message)

    def _apply(self, message: dict) -> None:
        """Keep one checked message: a daily bar or a status in the market state (a daily
        bar with the latest minute held, how much of the day it may have seen), a minute
        or updated bar in the book, noting when its symbol was last heard of."""
        if message.get("T") not in ("b", "u"):
            self.market.apply(message, self.book.newest)
            return
        self.book.apply(message)
        symbol, minute = message["S"], message["t"]
        if message["T"] == "b":  # a streamed bar: it trades (REST fills are `u`)
            self.market.traded(symbol, minute)
        if minute > self._last_seen.get(symbol, minute - _MINUTE):
            self._last_seen[symbol] = minute
            self._muted.discard(symbol)

    def _error(self, message: dict) -> None:
        code = int(message.get("code", 0))
        rule = classify_error(code)
        self.report.server_errors.append((code, rule.meaning))
        if rule.action == "fatal":
            raise StreamFatal(f"the stream refused ({code} {message.get('msg', '')}): "
                              f"{rule.meaning}")
        if rule.action == "ignore":
            return
        raise _Reconnect(slot_taken=rule.action == "wait_and_reconnect")
