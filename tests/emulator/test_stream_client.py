"""`aurora.stream.client` against the emulator's stream with scripted faults: it keeps
exactly the replayed minute bars, raises the watchdog alert once, and reconnects with
growing delays."""

from __future__ import annotations

import asyncio
import datetime as dt
import random

import pytest

from aurora.stream.backoff import Backoff
from aurora.stream.client import StreamFatal, StreamSession, StreamSettings
from aurora.stream.journal import Journal
from aurora.stream.minutes import MinuteBook
from aurora_testbed.emulator.stream import StreamFaults, StreamServer

KEY, SECRET = "PKSTREAMTEST", "stream-secret"
T0 = dt.datetime(2024, 3, 1, 14, 30, tzinfo=dt.UTC)
SYMBOLS = ("AAPL", "MSFT", "XOM")


def replayed(minutes: int = 8) -> list[dict]:
    bars = []
    for m in range(minutes):
        for i, symbol in enumerate(SYMBOLS):
            close = 100.0 + 10 * i + m
            bars.append({"T": "b", "S": symbol, "t": T0 + dt.timedelta(minutes=m),
                         "o": close, "h": close + 1, "l": close - 1, "c": close,
                         "v": 1000.0 + m, "n": 10, "vw": close})
    bars.append({**bars[4], "T": "u", "c": 999.0, "v": 5000.0})  # MSFT minute 1, late
    return bars


def expected() -> MinuteBook:
    book = MinuteBook()
    for message in replayed():
        book.apply(message)
    return book


def _session(srv: StreamServer, tmp_path, *, msgpack: bool, alerts: list,
             watchdog: float = 2.0) -> StreamSession:
    return StreamSession(
        StreamSettings(srv.url(), KEY, SECRET, SYMBOLS, use_msgpack=msgpack,
                       watchdog_seconds=watchdog),
        Journal(tmp_path / "stream.jsonl"),
        backoff=Backoff(base=0.05, cap=0.4, slot_wait=0.2, healthy_seconds=30,
                        rng=random.Random(3)),
        on_alert=lambda rule, message: alerts.append((rule, message)))


def _done(session: StreamSession) -> bool:
    return session.book.last_minute("XOM") == T0 + dt.timedelta(minutes=7)


@pytest.mark.parametrize("msgpack", [True, False])
def test_drops_silence_and_duplicates_leave_exactly_the_replayed_bars(tmp_path, msgpack):
    faults = StreamFaults(drop_after=2, silent_after=4, silent_seconds=6.0, duplicate=True)
    alerts: list = []
    with StreamServer(replayed(), {KEY: SECRET}, faults=faults) as srv:
        session = _session(srv, tmp_path, msgpack=msgpack, alerts=alerts)
        report = asyncio.run(asyncio.wait_for(session.run(lambda: _done(session)), 60))
    assert session.book.frame().equals(expected().frame())
    assert report.connections >= 3  # the first, after the drop, after the silence
    assert [rule for rule, _ in alerts] == ["stream_silent"] and report.silent_alerts == 1
    assert len(report.delays) >= report.connections - 1
    # the journal holds what arrived: a restart rebuilds the same book
    again = StreamSession(session.settings, session.journal)
    again.recover()
    assert again.book.frame().equals(session.book.frame())


def test_bad_keys_stop_the_session_with_one_line(tmp_path):
    with StreamServer(replayed(), {KEY: "other"}) as srv:
        session = _session(srv, tmp_path, msgpack=False, alerts=[])
        with pytest.raises(StreamFatal, match=r"refused \(402 auth failed\): auth failed: "
                                              r"check APCA_API_KEY_ID"):
            asyncio.run(asyncio.wait_for(session.run(lambda: False), 30))
    assert "stream-secret" not in repr(session.settings)


def test_a_taken_slot_waits_then_gets_in(tmp_path):
    async def scenario(srv: StreamServer) -> StreamSession:
        from websockets.asyncio.client import connect

        from aurora.stream.protocol import auth_message, encode

        async with connect(srv.url()) as other:  # another client holds the plan's slot
            await other.recv()
            await other.send(encode(auth_message(KEY, SECRET), use_msgpack=False))
            await other.recv()
            session = _session(srv, tmp_path, msgpack=False, alerts=[])
            task = asyncio.create_task(session.run(lambda: _done(session)))
            deadline = asyncio.get_running_loop().time() + 30
            while not any(code == 406 for code, _ in session.report.server_errors):
                assert asyncio.get_running_loop().time() < deadline, "no 406 seen"
                await asyncio.sleep(0.05)
        await asyncio.wait_for(task, 30)
        return session

    with StreamServer(replayed(), {KEY: SECRET}) as srv:
        session = asyncio.run(scenario(srv))
    assert (406, "connection limit exceeded: another connection uses the plan's stream") \
        in session.report.server_errors
    # each 406 read waits at least the slot wait: no tight loop (a connection the server
    # closed before its 406 was read retries on the usual backoff)
    refused = sum(code == 406 for code, _ in session.report.server_errors)
    assert refused >= 1 and sum(d >= 0.2 for d in session.report.delays) >= refused
    assert session.book.frame().equals(expected().frame())


@pytest.mark.parametrize("msgpack", [True, False])
def test_daily_bars_and_statuses_are_kept_and_journaled(tmp_path, msgpack):
    from aurora_testbed.emulator.stream_market import TradingHalt

    halt = TradingHalt("XOM", T0 + dt.timedelta(minutes=2), T0 + dt.timedelta(minutes=5),
                       code="P", reason_code="LUDP", reason_message="Volatility Trading Pause")
    with StreamServer(replayed(), {KEY: SECRET}, faults=StreamFaults(halts=(halt,))) as srv:
        session = _session(srv, tmp_path, msgpack=msgpack, alerts=[])
        report = asyncio.run(asyncio.wait_for(session.run(lambda: _done(session)), 60))
        sent = srv.scheduled("d")
    last = {m["S"]: m for m in sent}  # the day so far, after the last minute
    assert {s: (b.volume, b.high, b.low, b.close, b.t) for s, b in session.market.daily.items()} \
        == {s: (m["v"], m["h"], m["l"], m["c"], m["t"]) for s, m in last.items()}
    assert session.market.daily["MSFT"].volume == sum(1000.0 + m for m in range(8)) + 3999
    [h] = session.market.halts()
    assert (h.symbol, h.start, h.end, h.code, h.reason_code) == (
        "XOM", halt.start, halt.end, "P", "LUDP")
    assert report.status_messages == 2 and report.bar_messages == len(sent) + 8 * 3 + 1 - 3
    again = StreamSession(session.settings, session.journal)
    again.recover()
    assert again.market == session.market and again.book.frame().equals(session.book.frame())


def test_the_socket_is_read_while_a_rest_fill_runs(tmp_path):
    """The gap fill at connection runs in the background: while it is held up (a slow,
    rate-limited REST fetch), every streamed frame is still read and kept."""
    import threading

    release = threading.Event()
    asked: list[tuple] = []
    seen_during_fill: list[int] = []
    alerts: list = []
    with StreamServer(replayed(), {KEY: SECRET}, minute_seconds=0.05) as srv:
        session = _session(srv, tmp_path, msgpack=True, alerts=alerts)

        def slow_fill(after, before):
            asked.append((after, before))
            release.wait(10)  # until the stream has kept every replayed minute
            seen_during_fill.append(session.report.frames)
            return []

        session.fill_gap = slow_fill

        async def main():
            streaming = asyncio.create_task(session.run(lambda: _done(session)))
            while not _done(session):
                await asyncio.sleep(0.01)
            release.set()
            await streaming

        asyncio.run(asyncio.wait_for(main(), 30))
    assert asked and asked[0][0] is None  # from the start of the day
    assert session.book.frame().equals(expected().frame())
    assert seen_during_fill[0] >= 8  # the frames read while the fill was held up


def test_messages_of_another_day_are_counted_not_kept(tmp_path):
    later = {"T": "b", "S": "AAPL", "t": T0 + dt.timedelta(days=3), "o": 1.0, "h": 1.0,
             "l": 1.0, "c": 1.0, "v": 1.0, "n": 1, "vw": 1.0}
    carried = {"T": "s", "S": "XOM", "sc": "H", "sm": "", "rc": "T1", "rm": "",
               "t": T0 - dt.timedelta(days=1), "z": "A"}  # yesterday's halt, in force
    messages = [carried, *replayed(3), later]
    alerts: list = []
    with StreamServer(messages, {KEY: SECRET}) as srv:
        session = _session(srv, tmp_path, msgpack=False, alerts=alerts)
        session.day = T0.date()
        asyncio.run(asyncio.wait_for(session.run(lambda: session.report.later_day), 30))
    assert session.report.other_days == 1 and session.report.later_day
    assert session.book.newest == T0 + dt.timedelta(minutes=2)
    # yesterday's halt is kept, and XOM's first streamed minute ended it (implied)
    halts = session.market.halts()
    assert [(h.symbol, h.start, h.end) for h in halts] == [
        ("XOM", T0 - dt.timedelta(days=1), T0)]
    again = StreamSession(session.settings, session.journal)
    again.recover()
    assert again.book.newest == T0 + dt.timedelta(minutes=2)  # never journaled either


def test_an_error_in_a_background_fill_is_not_lost(tmp_path):
    """A fill's REST errors are alerts; anything else it raises (the journal failing, a
    bug) stops the session with that error, even when the fill ended long before."""
    alerts: list = []
    with StreamServer(replayed(), {KEY: SECRET}) as srv:
        session = _session(srv, tmp_path, msgpack=False, alerts=alerts)

        def broken(after, before):
            raise RuntimeError("a bug in the filler")

        session.fill_gap = broken
        with pytest.raises(RuntimeError, match="a bug in the filler"):
            asyncio.run(asyncio.wait_for(session.run(lambda: _done(session)), 30))
