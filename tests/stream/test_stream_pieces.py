"""The stream's socket-free pieces on hand-built messages with known answers."""

from __future__ import annotations

import datetime as dt
import json
import random

import msgpack
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aurora.stream.backoff import Backoff
from aurora.stream.journal import Journal
from aurora.stream.minutes import MinuteBook
from aurora.stream.protocol import (
    StreamProtocolError,
    auth_message,
    classify_error,
    decode,
    encode,
    subscribe_message,
)

T0 = dt.datetime(2024, 3, 1, 14, 30, tzinfo=dt.UTC)


def bar(kind: str, symbol: str, minute: int, close: float, volume: float = 100.0) -> dict:
    return {"T": kind, "S": symbol, "t": T0 + dt.timedelta(minutes=minute), "o": close,
            "h": close + 1, "l": close - 1, "c": close, "v": volume, "n": 3, "vw": close}


# -- protocol -----------------------------------------------------------------------------
def test_json_and_msgpack_frames_decode_to_the_same_messages():
    text = ('[{"T":"b","S":"AAPL","o":1.5,"h":2,"l":1,"c":1.8,"v":100,'
            '"t":"2024-03-01T14:30:00Z","n":3,"vw":1.7},{"T":"s","S":"AAPL","sc":"T"}]')
    packed = msgpack.packb(
        [{"T": "b", "S": "AAPL", "o": 1.5, "h": 2, "l": 1, "c": 1.8, "v": 100,
          "t": msgpack.Timestamp.from_datetime(T0), "n": 3, "vw": 1.7},
         {"T": "s", "S": "AAPL", "sc": "T"}], datetime=False)
    assert decode(text) == decode(packed)
    [first, status] = decode(text)
    assert first["t"] == T0 and first["t"].tzinfo is not None and status["T"] == "s"


@pytest.mark.parametrize("frame, message", [
    ("not json", "undecodable stream frame"),
    ('{"T":"success"}', "not an array of objects"),
    ('[{"T":"b","S":"A","t":"2024-03-01T14:30:00"}]', "has no time zone"),
    (b"\xc1", "undecodable stream frame"),
])
def test_a_frame_outside_the_contract_is_one_clear_error(frame, message):
    with pytest.raises(StreamProtocolError, match=message):
        decode(frame)


def test_client_messages_and_error_codes():
    assert json.loads(encode(auth_message("k", "s"), use_msgpack=False)) == {
        "action": "auth", "key": "k", "secret": "s"}
    sub = subscribe_message(["MSFT", "AAPL", "AAPL"])
    assert sub == {"action": "subscribe", "bars": ["AAPL", "MSFT"],
                   "updatedBars": ["AAPL", "MSFT"], "dailyBars": ["AAPL", "MSFT"],
                   "statuses": ["AAPL", "MSFT"]}
    assert msgpack.unpackb(encode(sub, use_msgpack=True)) == sub
    with pytest.raises(ValueError, match="unknown stream channel"):
        subscribe_message(["A"], ["trades"])
    assert {c for c in range(400, 412) if classify_error(c).action == "fatal"} == {
        400, 401, 402, 405, 408, 409, 410, 411}
    assert classify_error(406).action == "wait_and_reconnect"
    assert classify_error(403).action == "ignore"
    assert classify_error(404).action == classify_error(500).action == "reconnect"
    assert classify_error(599).meaning == "undocumented error 599"


# -- backoff ------------------------------------------------------------------------------
def test_backoff_grows_to_its_cap_with_jitter_and_resets_after_a_healthy_connection():
    b = Backoff(base=0.5, cap=8.0, healthy_seconds=60, rng=random.Random(1))
    ceilings, delays = [], []
    for _ in range(7):
        ceilings.append(b.ceiling())
        delays.append(b.next_delay())
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert all(0 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    b.connected(5.0)  # a short-lived connection: still failing
    assert b.ceiling() == 8.0
    b.connected(61.0)
    assert b.ceiling() == 0.5
    assert b.next_delay(slot_taken=True) >= 10.0  # 406: the slot is someone else's
    with pytest.raises(ValueError, match="0 < base <= cap"):
        Backoff(base=5, cap=1)


def test_backoff_is_reproducible_for_a_seed():
    def run(seed: int) -> list[float]:
        b = Backoff(rng=random.Random(seed))
        return [b.next_delay() for _ in range(6)]

    assert run(7) == run(7) and run(7) != run(8)


# -- the minute book ----------------------------------------------------------------------
def test_updated_bars_replace_minute_bars_whatever_the_order_and_repeats():
    book = MinuteBook()
    assert book.apply(bar("b", "A", 0, 10.0))
    assert not book.apply(bar("b", "A", 0, 10.0))  # a duplicate
    assert book.apply(bar("u", "A", 0, 10.5, volume=120))  # late trades
    assert not book.apply(bar("b", "A", 0, 10.0))  # the original again, after a reconnect
    assert not book.apply(bar("u", "A", 0, 10.5, volume=120))  # the update again
    assert book.apply(bar("u", "B", 1, 20.0))  # the update before its minute bar
    assert not book.apply(bar("b", "B", 1, 19.0))
    assert not book.apply({"T": "s", "S": "A"})  # statuses are not bars
    frame = book.frame()
    assert frame.columns == ["timestamp", "symbol", "open", "high", "low", "close",
                             "volume", "trade_count", "vwap"]
    assert frame.select("symbol", "close", "volume").rows() == [("A", 10.5, 120.0),
                                                              ("B", 20.0, 100.0)]
    assert book.last_minute("B") == T0 + dt.timedelta(minutes=1)
    assert book.last_minute("C") is None
    with pytest.raises(StreamProtocolError, match="bar message of A lacks c, v"):
        book.apply({"T": "b", "S": "A", "t": T0, "o": 1, "h": 1, "l": 1})


@given(st.permutations(list(range(8))), st.lists(st.integers(0, 7), max_size=6))
def test_the_book_does_not_depend_on_order_or_duplicates(order, repeats):
    messages = [bar("b", "A", m, 10.0 + m) for m in range(4)] + \
               [bar("u", "A", m, 20.0 + m) for m in range(0, 4, 2)] + \
               [bar("b", "B", 0, 5.0), bar("u", "B", 0, 6.0)]
    shuffled = [messages[i] for i in order] + [messages[i] for i in repeats]
    book = MinuteBook()
    for m in shuffled:
        book.apply(m)
    assert book.frame()["close"].to_list() == [20.0, 11.0, 22.0, 13.0, 6.0]


# -- the journal --------------------------------------------------------------------------
def test_the_journal_replays_what_was_fsynced_and_drops_a_torn_last_line(tmp_path):
    journal = Journal(tmp_path / "state" / "stream.jsonl")
    assert journal.replay() == []
    first = [bar("b", "A", 0, 10.0), {"T": "success", "msg": "authenticated"}]
    assert journal.append(first) == 2 and journal.append([]) == 0
    journal.append([bar("u", "A", 0, 10.5)])
    assert journal.replay() == [*first, bar("u", "A", 0, 10.5)]
    assert (journal.path.stat().st_mode & 0o777) == 0o600
    with journal.path.open("ab") as fh:  # a kill -9 in the middle of a write
        fh.write(b'{"T":"b","S":"A","t":"2024-03-01T14:3')
    assert len(journal.replay()) == 3
    book = MinuteBook()
    for m in journal.replay():
        book.apply(m)
    assert book.frame()["close"].to_list() == [10.5]
    text = journal.path.read_text().splitlines()
    journal.path.write_text("\n".join([text[0], "garbage", *text[1:]]) + "\n")
    with pytest.raises(StreamProtocolError, match=r"stream.jsonl: line 2 is not JSON"):
        journal.replay()


def test_minute_frame_schema_of_an_empty_book():
    assert MinuteBook().frame().schema == pl.Schema({
        "timestamp": pl.Datetime("us", "UTC"), "symbol": pl.String, "open": pl.Float64,
        "high": pl.Float64, "low": pl.Float64, "close": pl.Float64, "volume": pl.Float64,
        "trade_count": pl.Int64, "vwap": pl.Float64})


def test_a_torn_line_is_cut_away_before_the_next_append(tmp_path):
    journal = Journal(tmp_path / "stream.jsonl")
    journal.append([bar("b", "A", 0, 10.0)])
    with journal.path.open("ab") as fh:
        fh.write(b'{"T":"b","S":"A"')  # killed mid-write
    journal.append([bar("b", "A", 1, 11.0)])  # the restarted session goes on
    assert [m["t"].minute for m in journal.replay()] == [30, 31]


def test_two_updates_of_a_minute_give_the_same_book_in_either_order():
    early = bar("u", "A", 0, 10.2, volume=110)
    late = bar("u", "A", 0, 10.4, volume=130)  # more trades reported later
    books = []
    for order in ([early, late], [late, early]):
        book = MinuteBook()
        for m in [bar("b", "A", 0, 10.0), *order]:
            book.apply(m)
        books.append(book.frame())
    assert books[0].equals(books[1]) and books[0]["volume"][0] == 130


def test_a_malformed_timestamp_is_a_protocol_error():
    with pytest.raises(StreamProtocolError, match="not RFC-3339"):
        decode('[{"T":"b","S":"A","t":"2024-13-01T14:30:00Z"}]')


def test_silent_symbols_counts_minutes_of_the_session_by_the_market_clock():
    from aurora.stream.client import silent_symbols

    utc = dt.UTC
    seen = {"AAA": dt.datetime(2024, 3, 1, 15, 0, tzinfo=utc),   # 10:00 New York
            "BBB": dt.datetime(2024, 3, 1, 15, 20, tzinfo=utc),
            "CCC": dt.datetime(2024, 3, 1, 12, 0, tzinfo=utc)}   # 07:00: pre-market only
    newest = dt.datetime(2024, 3, 1, 15, 30, tzinfo=utc)
    # AAA quiet for 30 minutes; CCC's silence counts from the open: 60 minutes
    assert silent_symbols(seen, newest, 15, set()) == ["AAA", "CCC"]
    assert silent_symbols(seen, newest, 15, {"AAA"}) == ["CCC"]
    assert silent_symbols(seen, newest, 45, set()) == ["CCC"]
    assert silent_symbols(seen, dt.datetime(2024, 3, 1, 14, 0, tzinfo=utc), 15, set()) == []
    assert silent_symbols(seen, None, 15, set()) == []


def test_the_rest_filler_asks_in_batches_for_the_window_it_was_given():
    import polars as pl

    from aurora.stream.day import rest_filler

    calls = []

    class Client:
        def get_bars(self, symbols, start, end, **options):
            calls.append((symbols, options["between"], options["timeframe"]))
            return pl.DataFrame({"symbol": symbols, "timestamp": [options["between"][0]] *
                                 len(symbols), "open": 1.0, "high": 1.0, "low": 1.0,
                                 "close": 1.0, "volume": 5.0, "trade_count": 1, "vwap": 1.0})

    fill = rest_filler(Client(), ["A", "B", "C"], dt.date(2024, 3, 1), "iex", batch_size=2)
    utc = dt.UTC
    bars = fill(dt.datetime(2024, 3, 1, 15, 10, tzinfo=utc),
                dt.datetime(2024, 3, 1, 15, 20, tzinfo=utc))
    window = (dt.datetime(2024, 3, 1, 15, 9, tzinfo=utc),
              dt.datetime(2024, 3, 1, 15, 19, tzinfo=utc))
    assert calls == [(["A", "B"], window, "1Min"), (["C"], window, "1Min")]
    assert [b["S"] for b in bars] == ["A", "B", "C"] and {b["T"] for b in bars} == {"u"}
    calls.clear()
    assert fill(dt.datetime(2024, 3, 1, 15, 10, tzinfo=utc),
                dt.datetime(2024, 3, 1, 15, 9, tzinfo=utc)) == [] and calls == []


@pytest.mark.parametrize(("url", "feed"), [
    ("wss://stream.data.alpaca.markets/v2/iex", "iex"),
    ("wss://stream.data.alpaca.markets/v2/sip/", "sip"),
    ("wss://stream.data.alpaca.markets/v2/delayed_sip", "delayed_sip"),
    ("ws://127.0.0.1:9000/stream", "sip"),  # no feed in the URL: the configured one
])
def test_a_streams_rest_fills_ask_the_feed_it_streams(url, feed):
    from aurora.stream.day import stream_feed

    assert stream_feed(url, "sip") == feed
