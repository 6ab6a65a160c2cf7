"""The emulator's real-time stream: alpaca-py's StockDataStream receives exactly the
replayed bars (msgpack), a plain client gets them in JSON, and the documented errors come
as the contract says."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading

import pytest
from alpaca.data.enums import DataFeed
from alpaca.data.live import StockDataStream
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from aurora.stream.minutes import MinuteBook
from aurora.stream.protocol import auth_message, decode, subscribe_message
from aurora_testbed.emulator.stream import StreamServer

KEY, SECRET = "PKSTREAMTEST", "stream-secret"
T0 = dt.datetime(2024, 3, 1, 14, 30, tzinfo=dt.UTC)


def replayed() -> list[dict]:
    bars = []
    for minute in range(5):
        for i, symbol in enumerate(("AAPL", "MSFT", "XOM")):
            close = 100.0 + 10 * i + minute
            bars.append({"T": "b", "S": symbol, "t": T0 + dt.timedelta(minutes=minute),
                         "o": close - 0.5, "h": close + 1, "l": close - 1, "c": close,
                         "v": 1000.0 + minute, "n": 10 + minute, "vw": close - 0.1})
    # late trades: MSFT's second minute again, changed
    bars.append({**bars[4], "T": "u", "c": 999.0, "v": 5000.0})
    return bars


def test_alpaca_py_stream_receives_exactly_the_replayed_bars():
    got: list = []
    done = threading.Event()
    with StreamServer(replayed(), {KEY: SECRET}) as srv:
        stream = StockDataStream(KEY, SECRET, feed=DataFeed.IEX, url_override=srv.url())

        async def on_bar(bar) -> None:
            got.append((bar.symbol, bar.timestamp, bar.close, bar.volume))
            if len(got) == 10:  # AAPL and MSFT x 5 minutes
                done.set()

        stream.subscribe_bars(on_bar, "AAPL", "MSFT")
        runner = threading.Thread(target=stream.run, daemon=True)
        runner.start()
        assert done.wait(30), f"received {len(got)} of 10 bars"
        stream.stop()
        runner.join(10)
    expected = [(b["S"], b["t"], b["c"], b["v"]) for b in replayed()
                if b["T"] == "b" and b["S"] in ("AAPL", "MSFT")]
    assert sorted(got) == sorted(expected)


async def _session(url: str, first: dict, then: list[dict], frames: int) -> list:
    """Connect (JSON framing), send `first` then `then`, read `frames` frames."""
    out = []
    async with connect(url, open_timeout=10) as ws:
        out.append(decode(await asyncio.wait_for(ws.recv(), 10)))
        for message in [first, *then]:
            await ws.send(json.dumps(message))
        for _ in range(frames):
            out.append(decode(await asyncio.wait_for(ws.recv(), 10)))
    return out


def test_json_framing_subscription_and_updated_bars_build_the_minute_book():
    with StreamServer(replayed(), {KEY: SECRET}) as srv:
        frames = asyncio.run(_session(
            srv.url(), auth_message(KEY, SECRET),
            [subscribe_message(["AAPL", "MSFT", "XOM"], ["bars", "updatedBars"])], 2 + 5))
    assert frames[0] == [{"T": "success", "msg": "connected"}]
    assert frames[1] == [{"T": "success", "msg": "authenticated"}]
    [sub] = frames[2]
    assert sub["T"] == "subscription" and sub["bars"] == ["AAPL", "MSFT", "XOM"]
    book = MinuteBook()
    for frame in frames[3:]:
        for message in frame:
            book.apply(message)
    table = book.frame()
    assert table.height == 15
    msft = table.filter(table["symbol"] == "MSFT")["close"].to_list()
    assert msft == [110.0, 999.0, 112.0, 113.0, 114.0]  # the updated bar won


@pytest.mark.parametrize("first, code", [
    (auth_message(KEY, "wrong"), 402),
    (subscribe_message(["AAPL"]), 401),
    ({"action": "dance"}, 400),
])
def test_documented_errors(first, code):
    with StreamServer(replayed(), {KEY: SECRET}) as srv:
        frames = asyncio.run(_session(srv.url(), first, [], 1))
    assert frames[1][0]["T"] == "error" and frames[1][0]["code"] == code


def test_no_auth_in_time_is_404_and_a_second_connection_is_406():
    with StreamServer(replayed(), {KEY: SECRET}, auth_timeout=0.3) as srv:
        async def silent() -> list:
            async with connect(srv.url()) as ws:
                return [decode(await asyncio.wait_for(ws.recv(), 10)) for _ in range(2)]

        assert asyncio.run(silent())[1][0]["code"] == 404

        async def two() -> list:
            async with connect(srv.url()) as first:
                await first.recv()
                await first.send(json.dumps(auth_message(KEY, SECRET)))
                await first.recv()
                async with connect(srv.url()) as second:
                    frames = [decode(await asyncio.wait_for(second.recv(), 10))]
                    await second.send(json.dumps(auth_message(KEY, SECRET)))
                    frames.append(decode(await asyncio.wait_for(second.recv(), 10)))
                    return frames

        assert asyncio.run(two())[1][0]["code"] == 406


async def _read_all(url: str, symbols: list[str], *, quiet: float = 1.0) -> tuple[list, bool]:
    """Auth, subscribe bars, read data frames until the server goes quiet for `quiet`
    seconds or cuts the connection; (frames, cut)."""
    frames = []
    try:
        async with connect(url) as ws:
            await ws.recv()
            await ws.send(json.dumps(auth_message(KEY, SECRET)))
            await ws.recv()
            await ws.send(json.dumps(subscribe_message(symbols, ["bars"])))
            await ws.recv()
            while True:
                try:
                    frames.append(decode(await asyncio.wait_for(ws.recv(), quiet)))
                except TimeoutError:
                    return frames, False
    except ConnectionClosed:
        return frames, True


def test_faults_duplicate_reverse_drop_and_silence():
    from aurora_testbed.emulator.stream import StreamFaults

    minutes = [T0 + dt.timedelta(minutes=m) for m in range(5)]
    with StreamServer(replayed(), {KEY: SECRET},
                      faults=StreamFaults(duplicate=True, reverse_minutes=True)) as srv:
        frames, cut = asyncio.run(_read_all(srv.url(), ["AAPL"], quiet=5.0))
    assert not cut
    assert [f[0]["t"] for f in frames] == [minutes[i] for i in (1, 1, 0, 0, 3, 3, 2, 2, 4, 4)]

    with StreamServer(replayed(), {KEY: SECRET}, faults=StreamFaults(drop_after=2)) as srv:
        first, cut = asyncio.run(_read_all(srv.url(), ["AAPL"]))
        assert cut and [f[0]["t"] for f in first] == minutes[:2]
        rest, cut = asyncio.run(_read_all(srv.url(), ["AAPL"], quiet=5.0))  # no repeat
        assert not cut and [f[0]["t"] for f in rest] == minutes[2:]

    with StreamServer(replayed(), {KEY: SECRET},
                      faults=StreamFaults(silent_after=1, silent_seconds=4.0)) as srv:
        quiet, cut = asyncio.run(_read_all(srv.url(), ["AAPL"], quiet=2.0))
    assert not cut and [f[0]["t"] for f in quiet] == minutes[:1]  # open, but silent


def test_the_synthetic_markets_minutes_stream_and_rebuild_exactly():
    import polars as pl

    from aurora_testbed.emulator.stream import bar_messages
    from aurora_testbed.synthetic.minutes import minute_bars

    daily = pl.DataFrame({"date": [dt.date(2024, 7, 3)] * 2, "symbol": ["AAPL", "XOM"],
                          "open": [101.0, 50.0], "high": [102.0, 50.5],
                          "low": [100.5, 48.0], "close": [101.5, 48.2],
                          "volume": [900_000.0, 750_000.0], "trade_count": [9_000, 7_000]})
    minutes = minute_bars(daily, seed=1)
    with StreamServer(bar_messages(minutes), {KEY: SECRET}) as srv:
        frames, cut = asyncio.run(_read_all(srv.url(), ["AAPL", "XOM"], quiet=5.0))
    assert not cut and len(frames) == 210  # a half day, one frame a minute
    book = MinuteBook()
    for frame in frames:
        for message in frame:
            book.apply(message)
    assert book.frame().equals(minutes.sort("symbol", "timestamp"))


# -- daily bars and trading statuses --------------------------------------------------------
HALT_REASON = "Trading Halted; For information requested by NASDAQ"


def _halted_server(**kwargs) -> StreamServer:
    """The replay of `replayed()` with XOM halted from its second minute to its fourth."""
    from aurora_testbed.emulator.stream import StreamFaults
    from aurora_testbed.emulator.stream_market import TradingHalt

    halt = TradingHalt("XOM", T0 + dt.timedelta(minutes=1), T0 + dt.timedelta(minutes=3))
    return StreamServer(replayed(), {KEY: SECRET}, faults=StreamFaults(halts=(halt,)),
                        **kwargs)


# the running daily volumes, by hand: MSFT's updated second minute (5,000 instead of 1,001)
# comes two minutes late, with the fourth minute
DAILY_VOLUMES = {"AAPL": [1000.0, 2001.0, 3003.0, 4006.0, 5010.0],
                 "MSFT": [1000.0, 2001.0, 3003.0, 8005.0, 9009.0]}
MIDNIGHT = dt.datetime(2024, 3, 1, 5, 0, tzinfo=dt.UTC)  # New York midnight, winter
STATUSES = [("XOM", T0 + dt.timedelta(minutes=1), "H", "Trading Halt", "T12", HALT_REASON,
             "C"),
            ("XOM", T0 + dt.timedelta(minutes=3), "T", "Trading Resumption", "", "", "C")]


def _fields(bar: dict) -> tuple:
    return (bar["S"], bar["t"], bar["o"], bar["h"], bar["l"], bar["c"], bar["v"], bar["n"],
            bar["vw"])


def test_the_schedule_of_daily_bars_and_statuses_is_what_the_minutes_say():
    with _halted_server() as srv:
        daily, statuses = srv.scheduled("d"), srv.scheduled("s")
        xom = [b["t"] for b in srv.scheduled("b") if b["S"] == "XOM"]
    for symbol, volumes in DAILY_VOLUMES.items():
        mine = [b for b in daily if b["S"] == symbol]
        assert [b["v"] for b in mine] == volumes
        assert {b["t"] for b in mine} == {MIDNIGHT} and {b["o"] for b in mine} == {
            replayed()[0 if symbol == "AAPL" else 1]["o"]}
    msft = [b for b in daily if b["S"] == "MSFT"][-1]
    assert (msft["h"], msft["l"], msft["c"], msft["n"]) == (115.0, 109.0, 114.0, 10 + 11 + 12
                                                            + 13 + 14)
    assert [b["v"] for b in daily if b["S"] == "XOM"] == [1000.0, 2003.0, 3007.0]
    assert xom == [T0, T0 + dt.timedelta(minutes=3), T0 + dt.timedelta(minutes=4)]
    assert [(s["S"], s["t"], s["sc"], s["sm"], s["rc"], s["rm"], s["z"]) for s in statuses] \
        == STATUSES


def test_alpaca_py_stream_receives_exactly_the_daily_bars_and_trading_statuses():
    bars: list = []
    statuses: list = []
    done = threading.Event()
    with _halted_server() as srv:
        stream = StockDataStream(KEY, SECRET, feed=DataFeed.IEX, url_override=srv.url())
        want = [_fields(b) for b in srv.scheduled("d") if b["S"] in ("AAPL", "MSFT")]

        async def on_daily(bar) -> None:
            bars.append((bar.symbol, bar.timestamp, bar.open, bar.high, bar.low, bar.close,
                         bar.volume, bar.trade_count, bar.vwap))
            if len(bars) == len(want) and len(statuses) == 2:
                done.set()

        async def on_status(s) -> None:
            statuses.append((s.symbol, s.timestamp, s.status_code, s.status_message,
                             s.reason_code, s.reason_message, s.tape))
            if len(bars) == len(want) and len(statuses) == 2:
                done.set()

        stream.subscribe_daily_bars(on_daily, "AAPL", "MSFT")
        stream.subscribe_trading_statuses(on_status, "XOM")
        runner = threading.Thread(target=stream.run, daemon=True)
        runner.start()
        assert done.wait(30), f"received {len(bars)} daily bars, {len(statuses)} statuses"
        stream.stop()
        runner.join(10)
    assert bars == want and len(want) == 10
    assert [b[6] for b in bars if b[0] == "MSFT"] == DAILY_VOLUMES["MSFT"]
    assert statuses == STATUSES


def test_json_framing_sends_the_same_daily_bars_and_statuses_with_rfc3339_times():
    async def read(url: str) -> list:
        async with connect(url, open_timeout=10) as ws:
            await ws.recv()
            await ws.send(json.dumps(auth_message(KEY, SECRET)))
            await ws.recv()
            await ws.send(json.dumps({"action": "subscribe", "bars": ["XOM"],
                                      "dailyBars": ["AAPL", "MSFT"], "statuses": ["XOM"]}))
            return [await asyncio.wait_for(ws.recv(), 10) for _ in range(6)]

    with _halted_server() as srv:
        raw = asyncio.run(read(srv.url()))
        want_daily = [b for b in srv.scheduled("d") if b["S"] in ("AAPL", "MSFT")]
    [sub] = decode(raw[0])
    assert sub["dailyBars"] == ["AAPL", "MSFT"] and sub["statuses"] == ["XOM"]
    frames = [decode(text) for text in raw[1:]]
    assert [[m["T"] + m["S"] for m in f] for f in frames] == [
        ["bXOM", "dAAPL", "dMSFT"], ["sXOM", "dAAPL", "dMSFT"], ["dAAPL", "dMSFT"],
        ["sXOM", "bXOM", "dAAPL", "dMSFT"], ["bXOM", "dAAPL", "dMSFT"]]
    assert [m for f in frames for m in f if m["T"] == "d"] == want_daily
    assert [(m["S"], m["t"], m["sc"], m["sm"], m["rc"], m["rm"], m["z"])
            for f in frames for m in f if m["T"] == "s"] == STATUSES
    assert '"t":"2024-03-01T05:00:00Z"' in raw[1] and '"t":"2024-03-01T14:31:00Z"' in raw[2]


def test_daily_bars_count_the_regular_session_unless_extended():
    from aurora_testbed.emulator.stream_market import running_daily_bars

    summer = dt.datetime(2024, 7, 1, 13, 0, tzinfo=dt.UTC)  # 09:00 New York: pre-market

    def bar(minute: int, volume: float) -> dict:
        t = summer + dt.timedelta(minutes=minute)
        return {"T": "b", "S": "AAPL", "t": t, "o": 10.0, "h": 11.0, "l": 9.0, "c": 10.5,
                "v": volume, "n": 1, "vw": 10.0}

    frames = [[bar(0, 50.0)], [bar(30, 200.0)], [bar(31, 100.0)]]  # 09:00, 09:30, 09:31
    regular = running_daily_bars(frames)
    assert [[d["v"] for d in f] for f in regular] == [[], [200.0], [300.0]]
    assert regular[1][0]["t"] == dt.datetime(2024, 7, 1, 4, 0, tzinfo=dt.UTC)  # EDT
    extended = running_daily_bars(frames, extended=True)
    assert [[d["v"] for d in f] for f in extended] == [[50.0], [250.0], [350.0]]
