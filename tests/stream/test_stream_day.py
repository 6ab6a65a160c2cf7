"""`aurora stream` against the emulator: the stream (drops, silence, duplicates, updated
bars, minutes missed while away) plus the REST gap fill store exactly what a REST fetch of
the same minutes returns afterwards; a `kill -9` mid-session loses nothing."""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from aurora.config import AlpacaConfig, AuroraConfig, StreamConfig
from aurora.intraday import intraday_store, read_intraday
from aurora.intraday.daily import daily_fields, load_daily_fields
from aurora.intraday.store import stored_days
from aurora.stream.day import run_stream_day
from aurora_testbed.emulator import EmulatorServer, MarketData
from aurora_testbed.emulator.series import MINUTE_SEED
from aurora_testbed.emulator.stream import StreamFaults, StreamServer, messages_with_updates
from aurora_testbed.synthetic.minutes import minute_bars

KEY, SECRET = "PKSTREAMDAY", "stream-day-secret-value"
SYMBOLS = ["AAA", "BBB", "CCC"]
DAY = dt.date(2024, 3, 1)
LAST = dt.datetime(2024, 3, 1, 21, 10, tzinfo=dt.UTC)  # 16:10 New York: past end_time
CLOSE = dt.datetime(2024, 3, 1, 21, 0, tzinfo=dt.UTC)  # 16:00 New York
REST_NOW = dt.datetime(2024, 3, 4, 15, 0, tzinfo=dt.UTC)
COLUMNS = ["symbol", "timestamp", "open", "high", "low", "close", "volume", "trade_count"]


@pytest.fixture(scope="module")
def market() -> MarketData:
    return MarketData.synthetic(SYMBOLS, dt.date(2024, 2, 1), DAY)


@pytest.fixture(scope="module")
def minutes(market) -> pl.DataFrame:
    """The day's minutes as REST serves them, up to 16:10 New York."""
    daily = market.bars.filter(pl.col("date") == DAY)
    return minute_bars(daily, MINUTE_SEED, extended=True).filter(pl.col("timestamp") <= LAST)


def config(data_dir: Path, rest_url: str, stream_url: str, **stream) -> AuroraConfig:
    return AuroraConfig(
        data_dir=data_dir,
        alpaca=AlpacaConfig(key_id=KEY, secret_key=SECRET, data_url=rest_url,
                            base_url=rest_url),
        stream=StreamConfig(url=stream_url, **{"watchdog_seconds": 1.5,
                                               "backoff_base_seconds": 0.05,
                                               "backoff_max_seconds": 0.4, **stream}))


def stored(data_dir: Path) -> pl.DataFrame:
    return read_intraday(data_dir, "1Min").select(COLUMNS)


def assert_rest_equal(data_dir: Path, minutes: pl.DataFrame) -> None:
    """Every minute to the close equals REST's (`minutes`); after it, what is held is
    REST's too (a late update may still be due; a replayed past day is filled over REST
    to 20:00, beyond the minutes replayed)."""
    daily = MarketData.synthetic(SYMBOLS, dt.date(2024, 2, 1), DAY).bars.filter(
        pl.col("date") == DAY)
    whole_day = minute_bars(daily, MINUTE_SEED, extended=True).select(COLUMNS)
    got, want = stored(data_dir), pl.concat([minutes.select(COLUMNS), whole_day]).unique(
        ["symbol", "timestamp"], keep="first").sort("symbol", "timestamp")
    before = pl.col("timestamp") < CLOSE
    assert got.filter(before).equals(want.filter(before))
    after = got.filter(~before)
    assert after.height and after.join(want, on=COLUMNS[:2], how="anti").height == 0
    assert after["timestamp"].max() >= dt.datetime(2024, 3, 1, 21, 5, tzinfo=dt.UTC)


def test_faults_and_missed_minutes_end_with_exactly_the_rest_minutes(market, minutes,
                                                                      tmp_path):
    faults = StreamFaults(drop_after=40, missed_on_drop=25, silent_after=150,
                          silent_seconds=4.0, duplicate=True)
    alerts: list[tuple[str, str]] = []
    with EmulatorServer(market, {KEY: SECRET}, clock=lambda: REST_NOW) as rest, \
            StreamServer(messages_with_updates(minutes, every=7), {KEY: SECRET},
                         faults=faults) as srv:
        cfg = config(tmp_path, rest.url, srv.url("{feed}"))
        report = run_stream_day(cfg, universe=SYMBOLS, day=DAY, rng=random.Random(5),
                                on_alert=lambda rule, message: alerts.append((rule, message)))
        rest_requests = len(rest.request_log)
    assert_rest_equal(tmp_path, minutes)
    s = report.stream
    assert [rule for rule, _ in alerts] == ["stream_silent"] and s.silent_alerts == 1
    assert s.connections >= 3 and len(s.delays) >= 2
    assert s.delays[1] > 0 and all(0 <= d <= 0.4 for d in s.delays)
    # the minutes lost with the drop came over REST: one request per connection, and
    # one at the end (an outage at the end of the session is filled too)
    assert max(g[2] for g in s.gaps_filled) >= 25
    assert rest_requests == len(s.gaps_filled) == s.connections + 1
    assert report.bars == stored(tmp_path).height and report.version is not None
    assert intraday_store(tmp_path, "1Min").verify() == []
    # the day's intraday fields are stored with it, equal to those of the stored minutes
    istore = intraday_store(tmp_path, "1Min")
    assert list(stored_days(istore.manifest(), fields=True)) == [DAY]
    assert load_daily_fields(tmp_path, "1Min").equals(
        daily_fields(read_intraday(tmp_path, "1Min")))
    lines = report.summary_lines()
    assert f"{report.bars:,} minute bars of 3 symbols" in lines[0]
    assert SECRET not in "\n".join(lines) + repr(report.to_dict())


def test_a_start_after_the_open_fills_the_morning_over_rest(market, minutes, tmp_path):
    late = dt.datetime(2024, 3, 1, 17, 0, tzinfo=dt.UTC)  # 12:00 New York
    afternoon = minutes.filter(pl.col("timestamp") >= late)
    with EmulatorServer(market, {KEY: SECRET}, clock=lambda: REST_NOW) as rest, \
            StreamServer(messages_with_updates(afternoon), {KEY: SECRET}) as srv:
        report = run_stream_day(config(tmp_path, rest.url, srv.url("{feed}")),
                                universe=SYMBOLS, day=DAY)
    assert_rest_equal(tmp_path, minutes)
    assert report.stream.gaps_filled[0][0] == "None"  # from 04:00, nothing held before


def _journal_lines(data_dir: Path) -> int:
    path = data_dir / "state" / "stream" / f"{DAY}.jsonl"
    return path.read_text().count("\n") if path.exists() else 0


def test_kill_9_mid_session_then_restart_loses_no_minute(market, minutes, tmp_path):
    universe = tmp_path / "universe.txt"
    universe.write_text("\n".join(SYMBOLS) + "\n")
    data_dir = tmp_path / "data"
    with EmulatorServer(market, {KEY: SECRET}, clock=lambda: REST_NOW) as rest, \
            StreamServer(messages_with_updates(minutes, every=5), {KEY: SECRET},
                         minute_seconds=0.01) as srv:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("APCA_", "AURORA_"))},
               "APCA_API_KEY_ID": KEY, "APCA_API_SECRET_KEY": SECRET,
               "APCA_API_DATA_URL": rest.url, "APCA_API_BASE_URL": rest.url,
               "AURORA_STREAM_URL": srv.url("{feed}")}
        argv = [sys.executable, "-m", "aurora.cli.main", "stream", "--data-dir", str(data_dir),
                "--universe", str(universe), "--day", DAY.isoformat()]
        first = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while _journal_lines(data_dir) < 300 and time.monotonic() < deadline:
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        held = _journal_lines(data_dir)
        assert held >= 300 and intraday_store(data_dir, "1Min").current_version() is None
        second = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert_rest_equal(data_dir, minutes)
    assert "replayed from the journal" in second.stdout
    assert SECRET not in second.stdout + second.stderr


def test_a_symbol_gone_quiet_is_resubscribed_alerted_once_and_filled(market, minutes,
                                                                     tmp_path):
    faults = StreamFaults(mute_symbol="BBB", mute_after=200)
    alerts: list[tuple[str, str]] = []
    with EmulatorServer(market, {KEY: SECRET}, clock=lambda: REST_NOW) as rest, \
            StreamServer(messages_with_updates(minutes, every=7), {KEY: SECRET},
                         faults=faults, minute_seconds=0.01) as srv:
        # paced: an unpaced replay runs ahead of the client into the socket's buffers, so
        # a resubscription would come after the rest of the day was sent muted
        report = run_stream_day(config(tmp_path, rest.url, srv.url("{feed}")),
                                universe=SYMBOLS, day=DAY,
                                on_alert=lambda rule, message: alerts.append((rule, message)))
    assert_rest_equal(tmp_path, minutes)
    assert [rule for rule, _ in alerts] == ["stream_symbol_silent"]
    assert "(BBB): resubscribed" in alerts[0][1]
    ((_, quiet),) = report.stream.resubscribed
    assert quiet == ["BBB"] and report.stream.connections == 1
    assert any("resubscribed 1 symbol(s) that went quiet: BBB" in line
               for line in report.summary_lines())


def _stream_report(data_dir: Path) -> dict:
    import json

    path = intraday_store(data_dir, "1Min").verified_path("stream_report.json")
    assert path is not None
    return json.loads(path.read_text())


def test_a_halt_longer_than_the_silence_limit_is_reported_not_alerted(market, minutes,
                                                                       tmp_path):
    from aurora_testbed.emulator.stream_market import TradingHalt

    start = dt.datetime(2024, 3, 1, 16, 2, tzinfo=dt.UTC)  # 11:02 New York
    end = dt.datetime(2024, 3, 1, 16, 47, tzinfo=dt.UTC)  # 45 minutes: 3 x the limit
    faults = StreamFaults(halts=(TradingHalt("CCC", start, end),))
    alerts: list[tuple[str, str]] = []
    with EmulatorServer(market, {KEY: SECRET}, clock=lambda: REST_NOW) as rest, \
            StreamServer(messages_with_updates(minutes, every=7), {KEY: SECRET},
                         faults=faults) as srv:
        report = run_stream_day(config(tmp_path, rest.url, srv.url("{feed}")),
                                universe=SYMBOLS, day=DAY,
                                on_alert=lambda rule, message: alerts.append((rule, message)))
    assert alerts == [] and report.stream.resubscribed == []
    [halt] = report.halts
    assert (halt.symbol, halt.start, halt.end, halt.code) == ("CCC", start, end, "H")
    line = ("halted: CCC 11:02-11:47 (code H, reason T12: Trading Halted; For information "
            "requested by NASDAQ)")
    assert line in report.summary_lines()
    assert _stream_report(tmp_path)["halts"] == [{
        "symbol": "CCC", "halted": "2024-03-01T16:02:00Z", "resumed": "2024-03-01T16:47:00Z",
        "code": "H", "reason_code": "T12",
        "reason_message": "Trading Halted; For information requested by NASDAQ"}]
    assert report.stream.status_messages == 2
    # the others are untouched; CCC has REST's minutes but those of its halt
    halted = (pl.col("symbol") == "CCC") & pl.col("timestamp").is_between(start, end,
                                                                          closed="left")
    got, want = stored(tmp_path), minutes.select(COLUMNS)
    assert want.filter(halted).height > 15 and got.filter(halted).height == 0
    before = pl.col("timestamp") < CLOSE
    assert got.filter(before).equals(want.filter(before & ~halted))
    # and the last streamed daily bars, which never counted the halted minutes, agree
    assert report.daily_findings == []


def test_a_daily_bar_that_disagrees_with_the_stored_minutes_is_one_finding(market, minutes,
                                                                          tmp_path):
    faults = StreamFaults(daily_skew=("BBB", "v", 1.5))
    with EmulatorServer(market, {KEY: SECRET}, clock=lambda: REST_NOW) as rest, \
            StreamServer(messages_with_updates(minutes, every=7), {KEY: SECRET},
                         faults=faults) as srv:
        report = run_stream_day(config(tmp_path / "skew", rest.url, srv.url("{feed}")),
                                universe=SYMBOLS, day=DAY)
    [finding] = report.daily_findings
    assert finding.startswith("BBB volume: ") and "against" in finding
    assert f"finding: stored minutes against the streamed daily bar: {finding}" in \
        report.summary_lines()
    assert _stream_report(tmp_path / "skew")["daily_bar_findings"] == [finding]
    assert_rest_equal(tmp_path / "skew", minutes)  # a finding, not an error: all published

    # a feed whose daily bar counts the extended hours: compared with the whole day
    with EmulatorServer(market, {KEY: SECRET}, clock=lambda: REST_NOW) as rest, \
            StreamServer(messages_with_updates(minutes, every=7), {KEY: SECRET},
                         daily_extended=True) as srv:
        report = run_stream_day(config(tmp_path / "ext", rest.url, srv.url("{feed}")),
                                universe=SYMBOLS, day=DAY)
    assert report.daily_findings == []


def test_a_past_day_on_a_live_stream_is_fetched_over_rest_and_only_that_day_is_kept(
        market, minutes, tmp_path):
    """Alpaca's live stream sends today's bars: streaming a past day stops at the first
    one (not kept, not published) and the day's minutes come over REST, equal to them."""
    from aurora_testbed.emulator.stream import bar_messages

    later = minutes.with_columns(pl.col("timestamp") + dt.timedelta(days=3)).head(30)
    with EmulatorServer(market, {KEY: SECRET}, clock=lambda: REST_NOW) as rest, \
            StreamServer(bar_messages(later), {KEY: SECRET}) as srv:
        cfg = config(tmp_path, rest.url, srv.url("{feed}"))
        report = run_stream_day(cfg, universe=SYMBOLS, day=DAY)
    s = report.stream
    assert s.later_day and s.other_days >= 1
    assert report.preclose == ("not reached: the stream of 2024-03-01 ended at a later "
                               "day's first message, before its cut")
    # the whole day to 20:00 New York, as `aurora fetch --timeframe 1Min` stores it
    whole_day = minute_bars(market.bars.filter(pl.col("date") == DAY), MINUTE_SEED,
                            extended=True)
    assert stored(tmp_path).equals(whole_day.select(COLUMNS))
    assert list(stored_days(intraday_store(tmp_path, "1Min").manifest())) == [DAY]
