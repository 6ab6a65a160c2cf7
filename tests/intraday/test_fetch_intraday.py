"""`fetch_intraday` over real HTTP against the emulator: exact bars, plan, resume, increments."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import polars as pl
import pytest

from aurora.config import AlpacaConfig, AuroraConfig, FetchConfig, IntradayConfig
from aurora.errors import FetchError
from aurora.fetch import fetch_prices
from aurora.intraday import fetch_intraday, intraday_store, read_intraday
from aurora.intraday.fetch import plan_groups
from aurora.intraday.store import stored_days
from aurora_testbed.emulator import EmulatorServer, FaultPlan, MarketData
from aurora_testbed.emulator.params import Timeframe
from aurora_testbed.emulator.series import SeriesSpec, build_series

D = dt.date
KEY, SECRET = "PKINTRADAYKEY", "intraday-secret-planted-77"
SYMBOLS = ["AAA", "BBB", "CCC", "DDD", "EEE"]
START, END = D(2024, 3, 1), D(2024, 3, 28)
WINDOW = (D(2024, 3, 18), D(2024, 3, 28))  # 9 sessions


def make_config(data_dir: Path, url: str, **fetch) -> AuroraConfig:
    fetch = {"batch_size": 2, "max_retries": 0, **fetch}
    return AuroraConfig(
        data_dir=data_dir,
        alpaca=AlpacaConfig(key_id=KEY, secret_key=SECRET, data_url=url, base_url=url),
        fetch=FetchConfig(**fetch), intraday=IntradayConfig(bars_per_request=10_000))


@pytest.fixture(scope="module")
def market() -> MarketData:
    return MarketData.synthetic(SYMBOLS, D(2024, 1, 2), END)


def served_minutes(market: MarketData, first: dt.date, last: dt.date) -> pl.DataFrame:
    spec = SeriesSpec(symbols=tuple(SYMBOLS), asof=None, feed="sip", adjustment="raw",
                      timeframe=Timeframe(1, "Min"), revisions=(), last_session=END,
                      today=END, days=(first, last))
    series = build_series(market, spec)
    return series.with_columns(
        pl.from_epoch("t", time_unit="ns").dt.cast_time_unit("us").dt.replace_time_zone("UTC")
        .alias("timestamp"), pl.col("volume").round(0)
    ).select("symbol", "timestamp", "open", "high", "low", "close", "volume", "trade_count")


def test_plan_bounds_each_request_group_and_covers_every_symbol_and_session():
    days = [D(2024, 3, d) for d in (18, 19, 20, 21, 22, 25, 26, 27, 28)]
    runs = plan_groups(SYMBOLS, days, "1Min", batch_size=2, bars_per_request=10_000)
    assert [len(run) for run in runs] == [3, 3]  # 5 sessions of 2 symbols x 960 <= 10,000
    for run in runs:
        assert [g.symbols for g in run] == [("AAA", "BBB"), ("CCC", "DDD"), ("EEE",)]
        assert all(len(g.symbols) * 960 * 5 <= 10_000 for g in run)
    assert (runs[0][0].start, runs[0][0].end, runs[1][0].start, runs[1][0].end) == (
        days[0], days[4], days[5], days[8])
    five = plan_groups(SYMBOLS, days, "5Min", batch_size=2, bars_per_request=10_000)
    assert len(five) == 1  # 192 bars a day: all 9 sessions fit one group


def test_fetch_stores_exactly_the_served_minutes_one_part_per_day(market, tmp_path):
    with EmulatorServer(market, {KEY: SECRET}) as server:
        cfg = make_config(tmp_path, server.url)
        fetch_prices(cfg, universe=SYMBOLS, start=START, end=END)
        report = fetch_intraday(cfg, "1Min", universe=SYMBOLS, start=WINDOW[0],
                                end=WINDOW[1])
    got = read_intraday(tmp_path, "1Min").select(
        "symbol", "timestamp", "open", "high", "low", "close", "volume", "trade_count")
    want = served_minutes(market, *WINDOW)
    assert got.equals(want)
    store = intraday_store(tmp_path, "1Min")
    days = stored_days(store.manifest())
    assert list(days) == sorted(want.get_column("timestamp").dt.convert_time_zone(
        "America/New_York").dt.date().unique().to_list())
    assert len(days) == 9 and store.verify() == []
    assert report.daily_checked and report.validation.disagreements == []
    assert report.validation.missing_days == [] and report.validation.without_daily == []
    assert report.validation.extended_bars > 0
    assert report.bars == want.height and report.groups == 6
    assert report.requests == report.minimum_requests  # every page full but the last
    assert report.minimum_requests == sum(
        math.ceil(n / 10_000) for n in _group_sizes(want))
    one_day = read_intraday(tmp_path, "1Min", start=D(2024, 3, 20), end=D(2024, 3, 20),
                            symbols=["CCC"])
    assert one_day.get_column("date").unique().to_list() == [D(2024, 3, 20)]
    assert one_day.get_column("symbol").unique().to_list() == ["CCC"]


def _group_sizes(want: pl.DataFrame) -> list[int]:
    date = pl.col("timestamp").dt.convert_time_zone("America/New_York").dt.date()
    batch = pl.col("symbol").replace_strict({"AAA": 0, "BBB": 0, "CCC": 1, "DDD": 1,
                                             "EEE": 2})
    run = (date >= D(2024, 3, 25)).cast(pl.Int64)
    return want.group_by(batch.alias("b"), run.alias("r")).len().get_column("len").to_list()


def test_a_failed_group_publishes_nothing_and_the_next_run_resumes(market, tmp_path):
    faults = FaultPlan().error(500, at_request=4)
    with EmulatorServer(market, {KEY: SECRET}, faults=faults) as server:
        cfg = make_config(tmp_path, server.url)
        with pytest.raises(FetchError, match=r"1 of 6 1Min request groups failed.*resume"):
            fetch_intraday(cfg, "1Min", universe=SYMBOLS, start=WINDOW[0], end=WINDOW[1])
        assert intraday_store(tmp_path, "1Min").current_version() is None
        first = len(server.request_log)
        report = fetch_intraday(cfg, "1Min", universe=SYMBOLS, start=WINDOW[0],
                                end=WINDOW[1])
        again = len(server.request_log) - first
    assert report.resumed == 5 and again < first
    assert not report.daily_checked  # no daily fetch here: said, not silently skipped
    assert any("not checked against daily bars" in line for line in report.summary_lines())
    got = read_intraday(tmp_path, "1Min").select(
        "symbol", "timestamp", "open", "high", "low", "close", "volume", "trade_count")
    assert got.equals(served_minutes(market, *WINDOW))


def test_a_later_fetch_adds_days_and_keeps_the_earlier_ones(market, tmp_path):
    with EmulatorServer(market, {KEY: SECRET}) as server:
        cfg = make_config(tmp_path, server.url)
        fetch_intraday(cfg, "5Min", universe=SYMBOLS, start=D(2024, 3, 18),
                       end=D(2024, 3, 21))
        store = intraday_store(tmp_path, "5Min")
        before = store.manifest()
        fetch_intraday(cfg, "5Min", universe=SYMBOLS, start=D(2024, 3, 21),
                       end=D(2024, 3, 26))
    after = store.manifest()
    assert list(stored_days(after)) == [D(2024, 3, d) for d in (18, 19, 20, 21, 22, 25, 26)]
    for day in (D(2024, 3, 18), D(2024, 3, 19), D(2024, 3, 20)):
        name = stored_days(after)[day]
        assert after.files[name].sha256 == before.files[name].sha256
    assert after.parent == before.version and store.verify() == []


def test_the_command_fetches_minutes_and_refuses_an_unknown_timeframe(
        market, tmp_path, monkeypatch, capsys):
    from aurora.cli.main import main

    universe = tmp_path / "universe.txt"
    universe.write_text("AAA\nBBB\n")
    with EmulatorServer(market, {KEY: SECRET}) as server:
        for name, value in (("APCA_API_DATA_URL", server.url), ("APCA_API_BASE_URL", server.url),
                            ("APCA_API_KEY_ID", KEY), ("APCA_API_SECRET_KEY", SECRET)):
            monkeypatch.setenv(name, value)
        args = ["fetch", "--data-dir", str(tmp_path / "data"), "--universe", str(universe),
                "--start", "2024-03-25", "--end", "2024-03-26", "--no-progress"]
        assert main([*args, "--timeframe", "15Min"]) == 0
        out = capsys.readouterr().out
        assert "15Min bars: 2 symbols x 2 sessions (2024-03-25..2024-03-26)" in out
        assert "the minimum at 10,000 bars a page is 1" in out
        assert main([*args, "--timeframe", "2Min"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: --timeframe '2Min'") and err.count("\n") == 1
    assert SECRET not in out + err
    days = stored_days(intraday_store(tmp_path / "data", "15Min").manifest())
    assert list(days) == [D(2024, 3, 25), D(2024, 3, 26)]


def test_today_is_complete_only_once_its_extended_hours_are_served():
    from aurora.intraday.fetch import last_complete_day

    after_close = dt.datetime(2024, 3, 1, 21, 30, tzinfo=dt.UTC)  # 16:30 New York
    assert last_complete_day("sip", after_close) == D(2024, 2, 29)
    evening = dt.datetime(2024, 3, 2, 1, 10, tzinfo=dt.UTC)  # 20:10: SIP still 15 min late
    assert last_complete_day("sip", evening) == D(2024, 2, 29)
    assert last_complete_day("iex", evening) == D(2024, 3, 1)
    assert last_complete_day("sip", dt.datetime(2024, 3, 2, 1, 20, tzinfo=dt.UTC)) == D(
        2024, 3, 1)
