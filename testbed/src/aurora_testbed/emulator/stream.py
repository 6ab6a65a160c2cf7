"""The emulator's real-time stream: Alpaca's market-data WebSocket on 127.0.0.1.

The contract of alpaca-market-data-api.md §7: `connected` on connect; auth by message
(within `auth_timeout` seconds) or by the APCA-API-KEY-ID / APCA-API-SECRET-KEY headers;
`subscribe` / `unsubscribe` answered with the full subscription; JSON text frames, or
binary msgpack when the upgrade says `Content-Type: application/msgpack` (a bar's `t` then
a msgpack Timestamp); the documented errors 401 (subscribe before auth), 402 (bad keys),
404 (auth timeout) and 406 (in answer to the auth of a second connection while one is
authenticated, as Alpaca does).

It replays `bars` (minute `b` and updated `u` messages with `S`, `t`, o h l c v n vw) once
a client subscribes, one frame per minute in time order (an updated bar UPDATE_LAG
minutes after its own, as the late re-send comes), `minute_seconds` apart (an
accelerated session clock), each frame holding the subscribed symbols' messages of that
minute: the trading statuses due by then (`statuses`), the minute and updated bars
(`bars`, `updatedBars`), then the running daily bar of each symbol whose day changed
(`dailyBars`; `stream_market`). The replay cursor belongs to the server, as the market's
clock does: a client that reconnects has missed what was sent meanwhile. `StreamFaults`
scripts what goes wrong, and the halts (`stream_market.TradingHalt`).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import datetime as dt
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from aurora_testbed.emulator.stream_market import (
    TradingHalt,
    running_daily_bars,
    without_halted,
)

CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses", "lulds")
KIND_CHANNEL = {"b": "bars", "u": "updatedBars", "d": "dailyBars", "s": "statuses"}
DATA_CHANNELS = ("bars", "updatedBars", "dailyBars", "statuses")  # what starts the replay
UPDATE_LAG = 2  # minutes: Alpaca re-sends a changed bar about 30 s after its minute


@dataclass
class StreamFaults:
    """What goes wrong, once each: after `drop_after` data frames the connection is cut;
    after `silent_after` frames the socket stays open and sends nothing for
    `silent_seconds`; `duplicate` sends every data frame twice; `reverse_minutes` sends
    each pair of minutes in reverse order; `mute_symbol` stops sending one symbol's bars
    after `mute_after` frames until it is subscribed again (an open socket that stops
    delivering a name, alpaca-py #740); `missed_on_drop` minutes are never streamed
    after the drop (the market moved on while the client was away: Alpaca does not
    replay them, a client fills them over REST). `halts` halt symbols (statuses sent, no
    minute bar until the resumption; `stream_market.TradingHalt`); `daily_skew`
    (symbol, field, factor) multiplies one field (`v`, `h`, `l`, ...) of one symbol's
    daily bars: a feed whose daily bar disagrees with its minutes."""

    drop_after: int | None = None
    missed_on_drop: int = 0
    mute_symbol: str | None = None  # after `mute_after` frames its bars stop coming on the
    mute_after: int = 0  # connection, until the client subscribes to it again
    silent_after: int | None = None
    silent_seconds: float = 5.0
    duplicate: bool = False
    reverse_minutes: bool = False
    halts: tuple[TradingHalt, ...] = ()
    daily_skew: tuple[str, str, float] | None = None


@dataclass
class _State:
    sent_frames: int = 0
    cursor: int = 0  # the next minute to replay
    dropped: bool = False
    silenced: bool = False
    muted: bool = False
    unmuted: bool = False
    active: ServerConnection | None = None


@dataclass
class StreamServer:
    """`with StreamServer(bars, {key: secret}) as srv:` then connect to `srv.url()`.
    `daily_extended`: the daily bars count extended-hours minutes too
    (`stream_market.running_daily_bars`)."""

    bars: Sequence[dict[str, Any]]
    credentials: dict[str, str]
    minute_seconds: float = 0.0
    auth_timeout: float = 10.0
    faults: StreamFaults = field(default_factory=StreamFaults)
    host: str = "127.0.0.1"
    daily_extended: bool = False

    def __post_init__(self) -> None:
        bars = without_halted(self.bars, self.faults.halts)
        minutes = sorted({b["t"] for b in bars})

        def frame_of(instant: dt.datetime) -> int:  # the first minute at or after it
            return min(bisect.bisect_left(minutes, instant), len(minutes) - 1)

        replayed: list[list[dict[str, Any]]] = [[] for _ in minutes]
        for b in bars:  # an updated bar comes with the first minute UPDATE_LAG after
            due = b["t"] + dt.timedelta(minutes=UPDATE_LAG) if b["T"] == "u" else b["t"]
            replayed[frame_of(due)].append(b)
        statuses: list[list[dict[str, Any]]] = [[] for _ in minutes]
        for halt in self.faults.halts:
            for status in halt.messages():
                statuses[frame_of(status["t"])].append(status)
        daily = running_daily_bars(replayed, extended=self.daily_extended)
        self._minutes: list[list[dict[str, Any]]] = [
            sorted(s, key=lambda m: m["t"]) + r + [self._skewed(d) for d in ds]
            for s, r, ds in zip(statuses, replayed, daily, strict=True)]
        if self.faults.reverse_minutes:
            for i in range(0, len(self._minutes) - 1, 2):
                self._minutes[i], self._minutes[i + 1] = self._minutes[i + 1], self._minutes[i]
        self._state = _State()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self.port = 0
        self.connections = 0

    def url(self, feed: str = "iex") -> str:
        return f"ws://{self.host}:{self.port}/v2/{feed}"

    def scheduled(self, kind: str) -> list[dict[str, Any]]:
        """The messages of type `kind` (`b`, `u`, `d`, `s`) the replay sends, in order, to
        a client subscribed to every symbol (faults aside)."""
        return [m for frame in self._minutes for m in frame if m["T"] == kind]

    def _skewed(self, daily: dict[str, Any]) -> dict[str, Any]:
        skew = self.faults.daily_skew
        if skew is None or daily["S"] != skew[0]:
            return daily
        return {**daily, skew[1]: daily[skew[1]] * skew[2]}

    # -- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> StreamServer:
        self._thread = threading.Thread(target=self._run, name="stream-emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the stream emulator did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(self._handle, self.host, 0) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            await self._stop.wait()

    # -- one connection -------------------------------------------------------------------
    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        packed = ws.request is not None and \
            ws.request.headers.get("Content-Type", "") == "application/msgpack"

        async def send(messages: list[dict[str, Any]]) -> None:
            await ws.send(_encode(messages, packed))

        async def fail(code: int, msg: str) -> None:
            await send([{"T": "error", "code": code, "msg": msg}])
            await ws.close()

        await send([{"T": "success", "msg": "connected"}])
        headers = ws.request.headers if ws.request is not None else {}
        authed = False
        if headers.get("APCA-API-KEY-ID"):
            if self.credentials.get(headers["APCA-API-KEY-ID"]) != \
                    headers.get("APCA-API-SECRET-KEY"):
                await fail(402, "auth failed")
                return
            if self._state.active is not None:
                await fail(406, "connection limit exceeded")
                return
            authed = True
            self._state.active = ws
            await send([{"T": "success", "msg": "authenticated"}])
        subs: dict[str, set[str]] = {c: set() for c in CHANNELS}
        replay: asyncio.Task | None = None
        try:
            while True:
                try:
                    timeout = None if authed else self.auth_timeout
                    raw = await asyncio.wait_for(ws.recv(), timeout)
                except TimeoutError:
                    await fail(404, "auth timeout")
                    return
                message = _decode(raw)
                action = message.get("action")
                if action == "auth":
                    if authed:
                        await send([{"T": "error", "code": 403,
                                     "msg": "already authenticated"}])
                    elif self.credentials.get(message.get("key")) != message.get("secret"):
                        await fail(402, "auth failed")
                        return
                    elif self._state.active is not None:  # the plan's one slot is taken
                        await fail(406, "connection limit exceeded")
                        return
                    else:
                        authed = True
                        self._state.active = ws
                        await send([{"T": "success", "msg": "authenticated"}])
                elif action in ("subscribe", "unsubscribe"):
                    if not authed:
                        await fail(401, "not authenticated")
                        return
                    if self._state.muted and action == "subscribe" and \
                            self.faults.mute_symbol in (message.get("bars") or []):
                        self._state.unmuted = True
                    for channel in CHANNELS:
                        symbols = set(message.get(channel) or [])
                        subs[channel] = (subs[channel] | symbols if action == "subscribe"
                                         else subs[channel] - symbols)
                    await send([{"T": "subscription",
                                 **{c: sorted(subs[c]) for c in CHANNELS},
                                 "corrections": sorted(subs["trades"]),
                                 "cancelErrors": sorted(subs["trades"])}])
                    if replay is None and any(subs[c] for c in DATA_CHANNELS):
                        replay = asyncio.create_task(self._replay(ws, subs, send))
                else:
                    await fail(400, "invalid syntax")
                    return
        except ConnectionClosed:
            pass
        finally:
            if replay is not None:
                replay.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await replay
            if self._state.active is ws:
                self._state.active = None

    async def _replay(self, ws: ServerConnection, subs: dict[str, set[str]], send) -> None:
        """Send the minutes from the server's cursor on; the cursor moves only once a
        minute is sent, so a connection cut or cancelled before it loses nothing."""
        state, faults = self._state, self.faults
        while state.cursor < len(self._minutes):
            if self.minute_seconds:
                await asyncio.sleep(self.minute_seconds)
            frame = [b for b in self._minutes[state.cursor]
                     if b["S"] in subs[KIND_CHANNEL.get(b["T"], "bars")]
                     or "*" in subs[KIND_CHANNEL.get(b["T"], "bars")]]
            if faults.mute_symbol is not None and state.sent_frames >= faults.mute_after:
                state.muted = True
                if not state.unmuted:
                    frame = [b for b in frame if b["S"] != faults.mute_symbol]
            if frame and faults.silent_after is not None and not state.silenced and \
                    state.sent_frames >= faults.silent_after:
                state.silenced = True
                await asyncio.sleep(faults.silent_seconds)
            if frame and faults.drop_after is not None and not state.dropped and \
                    state.sent_frames >= faults.drop_after:
                state.dropped = True
                state.cursor += faults.missed_on_drop
                ws.transport.abort()  # cut, not closed: no close frame
                return
            for _ in range(2 if frame and faults.duplicate else 1 if frame else 0):
                await send(frame)
            state.cursor += 1
            if frame:
                state.sent_frames += 1


def bar_messages(minutes: Any) -> list[dict[str, Any]]:
    """Minute-bar messages (`T: b`) of a minute frame (`synthetic.minutes.MINUTE_SCHEMA`):
    what `StreamServer` replays."""
    return [{"T": "b", "S": r["symbol"], "t": r["timestamp"], "o": r["open"],
             "h": r["high"], "l": r["low"], "c": r["close"], "v": r["volume"],
             "n": r["trade_count"], "vw": r["vwap"]}
            for r in minutes.sort("timestamp", "symbol").iter_rows(named=True)]


def messages_with_updates(minutes: Any, every: int = 0) -> list[dict[str, Any]]:
    """`bar_messages(minutes)`, except that every `every`-th bar (0: none) first comes as
    an earlier version (90% of its volume, one trade fewer, its close at its open) and
    then as an updated bar (`T: u`) equal to the minute bar of `minutes`: what a REST fetch
    returns afterwards, since late trades only add."""
    out = []
    for i, message in enumerate(bar_messages(minutes)):
        if every and i % every == every - 1:
            early = {**message, "v": float(round(message["v"] * 0.9)),
                     "n": max(int(message["n"] or 1) - 1, 1), "c": message["o"]}
            out += [early, {**message, "T": "u"}]
        else:
            out.append(message)
    return out


def _encode(messages: list[dict[str, Any]], packed: bool) -> str | bytes:
    if packed:
        return msgpack.packb([{k: (msgpack.Timestamp.from_datetime(v)
                                   if isinstance(v, dt.datetime) else v)
                               for k, v in m.items()} for m in messages], datetime=False)
    return json.dumps([{k: (v.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
                            if isinstance(v, dt.datetime) else v) for k, v in m.items()}
                       for m in messages], separators=(",", ":"))


def _decode(raw: str | bytes) -> dict[str, Any]:
    try:
        body = msgpack.unpackb(raw) if isinstance(raw, bytes) else json.loads(raw)
    except (ValueError, msgpack.UnpackException):
        return {}
    return body if isinstance(body, dict) else {}
