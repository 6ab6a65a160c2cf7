"""Daily bars and trading statuses of the stream, without a socket: the market state, the
watchdog's halted exemption, and the stored minutes against the last daily bar."""

from __future__ import annotations

import datetime as dt

import msgpack
import polars as pl
import pytest

from aurora.config import IntradayConfig
from aurora.stream.client import silent_symbols
from aurora.stream.daily_check import daily_bar_findings
from aurora.stream.journal import Journal
from aurora.stream.market import Halt, MarketState
from aurora.stream.protocol import StreamProtocolError, decode

UTC = dt.UTC
DAY = dt.date(2024, 3, 1)  # winter: New York is UTC-5, the open 14:30Z, the close 21:00Z
MIDNIGHT = dt.datetime(2024, 3, 1, 5, 0, tzinfo=UTC)


def at(hour: int, minute: int) -> dt.datetime:
    """A New York wall time of DAY, in UTC."""
    return dt.datetime(2024, 3, 1, hour + 5, minute, tzinfo=UTC)


def status(symbol: str, code: str, when: dt.datetime, reason: str = "T12") -> dict:
    return {"T": "s", "S": symbol, "sc": code, "sm": "", "rc": reason,
            "rm": "Trading Halted; For information requested by NASDAQ" if reason else "",
            "t": when, "z": "C"}


def daily(symbol: str, volume: float, high: float = 11.0, low: float = 9.0) -> dict:
    return {"T": "d", "S": symbol, "o": 10.0, "h": high, "l": low, "c": 10.5, "v": volume,
            "t": MIDNIGHT, "n": 40, "vw": 10.2}


def test_status_and_daily_bar_frames_decode_alike_in_json_and_msgpack():
    text = ('[{"T":"s","S":"XYZ","sc":"H","sm":"Trading Halt","rc":"T12","rm":"News",'
            '"t":"2024-03-01T19:02:00.123456789Z","z":"C"},'
            '{"T":"d","S":"XYZ","o":10,"h":11,"l":9,"c":10.5,"v":400,'
            '"t":"2024-03-01T05:00:00Z","n":40,"vw":10.2}]')
    stamp = dt.datetime(2024, 3, 1, 19, 2, 0, 123456, tzinfo=UTC)
    packed = msgpack.packb(
        [{"T": "s", "S": "XYZ", "sc": "H", "sm": "Trading Halt", "rc": "T12", "rm": "News",
          "t": msgpack.Timestamp.from_datetime(stamp), "z": "C"},
         {"T": "d", "S": "XYZ", "o": 10, "h": 11, "l": 9, "c": 10.5, "v": 400,
          "t": msgpack.Timestamp.from_datetime(MIDNIGHT), "n": 40, "vw": 10.2}],
        datetime=False)
    assert decode(text) == decode(packed)
    halted, bar = decode(text)
    assert halted["t"] == stamp and bar["t"] == MIDNIGHT


def test_halts_are_told_from_statuses_whatever_their_order_and_repeats():
    state = MarketState()
    messages = [status("XYZ", "T", at(14, 17), reason=""), status("XYZ", "H", at(14, 2)),
                status("XYZ", "Q", at(14, 15), reason=""),  # quotes only: still halted
                status("XYZ", "H", at(14, 2)),  # a repeat after a reconnect
                status("ABC", "E", at(10, 0), reason=""),  # short-sale restriction: no halt
                status("ABC", "2", at(15, 50), reason="D")]  # CTA halt, not resumed
    assert [state.apply(m, None) for m in messages] == [True, True, True, False, True, True]
    assert state.halts() == [
        Halt("ABC", at(15, 50), None, "2", "D",
             "Trading Halted; For information requested by NASDAQ"),
        Halt("XYZ", at(14, 2), at(14, 17), "H", "T12",
             "Trading Halted; For information requested by NASDAQ")]
    assert state.halts()[1].line() == ("XYZ 14:02-14:17 (code H, reason T12: Trading Halted; "
                                       "For information requested by NASDAQ)")
    assert state.halts()[0].line().startswith("ABC 15:50- not resumed (code 2, reason D")
    assert state.halted_at(at(14, 10)) == {"XYZ"} and state.halted_at(at(14, 17)) == set()
    assert state.halted_at(at(15, 55)) == {"ABC"} and state.halted_at() == {"ABC"}
    assert state.resumed() == {"XYZ": at(14, 17)}
    assert state.halts()[1].to_dict() == {
        "symbol": "XYZ", "halted": "2024-03-01T19:02:00Z", "resumed": "2024-03-01T19:17:00Z",
        "code": "H", "reason_code": "T12",
        "reason_message": "Trading Halted; For information requested by NASDAQ"}


def test_a_streamed_minute_bar_after_a_halt_ends_it_when_the_resumption_was_lost():
    state = MarketState()
    state.apply(status("XYZ", "H", at(14, 2)), None)
    state.traded("XYZ", at(14, 2))  # the minute the halt fell in: trades before it
    assert state.halted_at() == {"XYZ"}
    state.traded("XYZ", at(14, 40))  # trading again: its `T` was lost in a disconnect
    assert state.halted_at() == set() and state.resumed() == {"XYZ": at(14, 40)}
    state.traded("XYZ", at(14, 41))
    state.traded("ABC", at(14, 41))  # no status: nothing to end
    assert [h.end for h in state.halts()] == [at(14, 40)]
    state.apply(status("XYZ", "H", at(15, 0)), None)  # a second halt, then its own `T`
    state.apply(status("XYZ", "T", at(15, 10), reason=""), None)
    state.traded("XYZ", at(15, 11))
    assert [(h.start, h.end) for h in state.halts()] == [(at(14, 2), at(14, 40)),
                                                        (at(15, 0), at(15, 10))]


def test_the_latest_daily_bar_is_kept_and_bad_messages_are_refused():
    state = MarketState()
    assert state.apply(daily("XYZ", 400), at(10, 0))
    assert state.apply(daily("XYZ", 900), at(10, 5))
    assert not state.apply(daily("XYZ", 400), at(10, 6))  # an older one, re-sent
    kept = state.daily["XYZ"]
    assert (kept.volume, kept.as_of, kept.t, kept.trade_count) == (900.0, at(10, 5), MIDNIGHT,
                                                                   40)
    with pytest.raises(StreamProtocolError, match="daily bar message of XYZ lacks v"):
        state.check({**daily("XYZ", 1), "v": None})
    with pytest.raises(StreamProtocolError, match="status message of XYZ lacks sc"):
        state.check({"T": "s", "S": "XYZ", "t": at(10, 0)})
    state.check({"T": "b"})  # not its business


def test_the_journal_keeps_statuses_and_daily_bars_with_their_times(tmp_path):
    journal = Journal(tmp_path / "day.jsonl")
    kept = [status("XYZ", "H", at(14, 2)), daily("XYZ", 400)]
    journal.append(kept)
    assert journal.replay() == kept


def test_a_halted_symbol_is_not_silent_and_a_resumed_one_counts_from_its_resumption():
    seen = {"AAA": at(14, 0), "XYZ": at(14, 1)}
    now = at(14, 40)
    assert silent_symbols(seen, now, 15, set()) == ["AAA", "XYZ"]
    assert silent_symbols(seen, now, 15, {"XYZ"}) == ["AAA"]  # halted: left out
    # resumed at 14:30: ten minutes of silence since then, not forty
    assert silent_symbols(seen, now, 15, set(), {"XYZ": at(14, 30)}) == ["AAA"]
    assert silent_symbols(seen, at(14, 46), 15, set(), {"XYZ": at(14, 30)}) == ["AAA", "XYZ"]


def minutes(rows: list[tuple[dt.datetime, float, float, float]], symbol: str = "XYZ"
            ) -> pl.DataFrame:
    """(time, high, low, volume) rows as stored minutes."""
    return pl.DataFrame({"timestamp": [r[0] for r in rows], "symbol": symbol,
                         "high": [r[1] for r in rows], "low": [r[2] for r in rows],
                         "volume": [r[3] for r in rows]},
                        schema_overrides={"timestamp": pl.Datetime("us", "UTC")})


def state_with(bar: dict, as_of: dt.datetime | None) -> MarketState:
    state = MarketState()
    state.apply(bar, as_of)
    return state


def test_the_stored_minutes_against_the_last_daily_bar():
    cfg = IntradayConfig()  # 1% on prices, 10% on volume
    stored = minutes([(at(8, 0), 12.0, 8.0, 50.0),  # pre-market: outside the regular bar
                      (at(9, 30), 11.0, 9.5, 200.0), (at(12, 0), 10.8, 9.0, 200.0),
                      (at(16, 30), 10.5, 10.0, 30.0)])  # after hours
    agree = state_with(daily("XYZ", 400), at(16, 5))
    assert daily_bar_findings(stored, agree.daily, DAY, cfg) == []
    high = state_with(daily("XYZ", 400, high=11.5), at(16, 5))
    assert daily_bar_findings(stored, high.daily, DAY, cfg) == [
        "XYZ high: 11 in the stored regular-session minutes against 11.5 in the last "
        "streamed daily bar"]
    # a daily volume above the regular sum: the feed counts extended hours; the whole
    # day's minutes held when the bar came (to 16:05: not the 16:30 one) are the basis
    extended = state_with(daily("XYZ", 450, high=12.0, low=8.0), at(16, 5))
    assert daily_bar_findings(stored, extended.daily, DAY, cfg) == []
    short = state_with(daily("XYZ", 300), at(16, 5))
    assert daily_bar_findings(stored, short.daily, DAY, cfg) == [
        "XYZ volume: 400 in the stored regular-session minutes against 300 in the last "
        "streamed daily bar"]
    # a daily bar from 10:00 saw only the 09:30 minute
    early = state_with(daily("XYZ", 200, high=11.0, low=9.5), at(10, 0))
    assert daily_bar_findings(stored, early.daily, DAY, cfg) == []
    assert daily_bar_findings(stored, MarketState().daily, DAY, cfg) == []
