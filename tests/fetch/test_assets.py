"""Symbols that stopped trading: the trading API's `/v2/assets`, its client and the fetch.

The client is checked against the emulator over real HTTP (and a few rows by hand); the
fetch against an emulated market where one symbol's bars stop mid-history.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import fetch_fakeapi
import polars as pl
import pytest
from fetch_fakeapi import FakeAlpaca, FakeClock

from aurora.config import AlpacaConfig, AuroraConfig, FetchConfig, ValidationConfig
from aurora.errors import DataValidationError
from aurora.fetch import fetch_prices
from aurora.fetch.assets import (
    AssetStatus,
    asset_statuses,
    fetch_asset_statuses,
    parse_assets,
    statuses_of,
)
from aurora.fetch.client import AlpacaBarsClient
from aurora.fetch.outcomes import RequestRejected
from aurora.fetch.pages import MalformedResponse
from aurora.fetch.ratelimit import RateLimiter
from aurora.store import Store
from aurora.store.bars import read_prices
from aurora.validation import validate_store

emulator = pytest.importorskip("aurora_testbed.emulator")
from aurora_testbed.emulator import Asset, EmulatorServer, MarketData  # noqa: E402

D = dt.date
KEY, SECRET = "PKASSETSKEY", "assets-secret-planted-9876"
START, END = D(2023, 1, 3), D(2023, 6, 30)
CUT = D(2023, 4, 14)  # KO's last bar
SYMBOLS = ["AAPL", "BRK.B", "JPM", "KO", "MSFT", "PEP"]
UNAVAILABLE = ("asset statuses unavailable (GET /v2/assets failed after 2 attempts: HTTP 500): "
               "symbols that stopped trading are reported as stale_symbol")


def config(data_dir: Path, url: str, base_url: str | None = None, secret: str = SECRET,
           key: str = KEY, severities: dict[str, str] | None = None, **fetch) -> AuroraConfig:
    return AuroraConfig(
        data_dir=data_dir,
        alpaca=AlpacaConfig(key_id=key, secret_key=secret, data_url=url,
                            base_url=base_url or url),
        validation=ValidationConfig(severities=severities or {}),
        fetch=FetchConfig(**{"max_retries": 1, **fetch}))


@pytest.fixture(scope="module")
def stopped_market() -> MarketData:
    """The synthetic market of SYMBOLS, with KO's bars cut after CUT (the emulator derives
    KO inactive from that), PEP active but not tradable and CELG inactive without any bar."""
    market = MarketData.synthetic(SYMBOLS, START, END, seed=11)
    cut = market.bars.filter(~((pl.col("symbol") == "KO") & (pl.col("date") > CUT)))
    return (MarketData(cut, market.corporate_actions).with_status("PEP")
            .with_assets(Asset("CELG", "inactive", tradable=False)))


@pytest.fixture()
def server(stopped_market):
    with EmulatorServer(stopped_market, {KEY: SECRET}, rate_limit_per_minute=10_000) as srv:
        yield srv


def fetch(data_dir: Path, srv: EmulatorServer, universe: list[str], **fetch_settings):
    clock = FakeClock(dt.datetime.now(dt.UTC).timestamp())
    return fetch_prices(config(data_dir, srv.url, **fetch_settings), universe=universe,
                        start=START, end=END, progress=None, sleep=clock.sleep,
                        clock=clock.time)


def limiter() -> RateLimiter:
    clock = FakeClock()
    return RateLimiter(10_000, clock=clock.time, sleep=clock.sleep)


# -- the client -------------------------------------------------------------------------
def test_statuses_from_the_emulator(server, tmp_path):
    statuses = fetch_asset_statuses(config(tmp_path, "http://127.0.0.1:9", server.url),
                                    ["AAPL", "BRK.B", "KO", "PEP", "CELG", "ZZZZ"],
                                    limiter=limiter())
    assert statuses.available and statuses.listed == len(SYMBOLS) + 1
    assert statuses.inactive == ("KO", "CELG")
    assert statuses.not_tradable == ("PEP",)
    assert statuses.unknown == ("ZZZZ",)
    assert statuses.assets["BRK.B"].symbol == "BRK.B"  # the dotted class share
    (request,) = server.request_log  # ONE request, every status, to the trading URL
    assert (request.path, request.params, request.status) == (
        "/v2/assets", {"asset_class": "us_equity"}, 200)


def test_rows_are_read_leniently_but_typed():
    rows = parse_assets([
        {"symbol": "AAA", "status": "active", "tradable": True, "name": "A Corp",
         "exchange": "NYSE", "class": "us_equity", "easy_to_borrow": True, "new_field": [1]},
        {"symbol": "BBB", "status": "inactive", "tradable": False},  # no name, no exchange
        {"symbol": "BTC/USD", "status": "active", "tradable": True, "class": "crypto"},
    ])
    assert rows == [AssetStatus("AAA", "active", True, "A Corp", "NYSE"),
                    AssetStatus("BBB", "inactive", False)]


@pytest.mark.parametrize("body, message", [
    ({"assets": []}, "the assets answer is not a JSON array"),
    (["AAA"], "asset row 1 is not an object"),
    ([{"status": "active", "tradable": True}], "asset row 1 has no symbol ('symbol' is null)"),
    ([{"symbol": "AAA", "status": "halted", "tradable": True}],
     "asset row 1 (AAA) has status halted (active or inactive)"),
    ([{"symbol": "AAA", "status": "active", "tradable": "yes"}],
     "asset row 1 (AAA) has 'tradable' = yes, not a boolean"),
    ([{"symbol": "AAA", "status": "active", "tradable": True, "name": 7}],
     "asset row 1 (AAA) has 'name' = 7, not a string"),
])
def test_malformed_rows_name_the_row(body, message):
    with pytest.raises(MalformedResponse) as info:
        parse_assets(body)
    assert str(info.value) == message


def test_an_odd_row_of_a_symbol_not_asked_about_costs_nothing():
    body = [{"symbol": "ZZZ", "status": "halted", "tradable": None, "name": 7},
            {"symbol": "AAA", "status": "inactive", "tradable": False}]
    assert parse_assets(body, wanted={"AAA"}) == [AssetStatus("AAA", "inactive", False)]
    with pytest.raises(MalformedResponse, match=r"asset row 1 \(ZZZ\) has status halted"):
        parse_assets(body, wanted={"AAA", "ZZZ"})


def test_symbols_are_normalised_and_the_servers_own_spelling_wins():
    rows = [AssetStatus("FB", "inactive", False), AssetStatus("META", "active", True),
            AssetStatus("ANTM", "inactive", False),  # mapped to ELV, which is not listed
            AssetStatus("XYZ", "inactive", False), AssetStatus("XYZ", "active", True),
            AssetStatus("brk.b", "active", True)]
    statuses = statuses_of(rows, ["META", "ELV", "XYZ", "BRK.B"])
    assert statuses.assets["META"].status == "active"  # not FB's row
    assert statuses.assets["ELV"].symbol == "ANTM" and statuses.inactive == ("ELV",)
    assert statuses.assets["XYZ"].status == "active"  # a ticker reused: the active row
    assert statuses.assets["BRK.B"].symbol == "brk.b" and statuses.unknown == ()


def test_a_malformed_answer_is_retried_then_one_line(tmp_path, clock):
    api = FakeAlpaca({}, assets=[{"symbol": "AAA", "status": "gone", "tradable": False}])
    cfg = config(tmp_path, "http://api.test", key=fetch_fakeapi.KEY,
                 secret=fetch_fakeapi.SECRET, max_retries=2)
    statuses = asset_statuses(cfg, ["AAA"], limiter=limiter(), transport=api.transport(),
                              sleep=clock.sleep)
    assert [path for path, _ in api.log] == ["/v2/assets"] * 3
    assert statuses.error == ("GET /v2/assets failed after 3 attempts: malformed answer: "
                              "asset row 1 (AAA) has status gone (active or inactive)")
    assert statuses.inactive == statuses.unknown == () and not statuses.available
    assert statuses.warning() == (
        f"asset statuses unavailable ({statuses.error}): symbols that stopped trading are "
        "reported as stale_symbol")


def test_an_object_where_an_array_is_asked_is_malformed(tmp_path, clock):
    api = FakeAlpaca({}, assets={"assets": []})  # type: ignore[arg-type]
    cfg = config(tmp_path, "http://api.test", key=fetch_fakeapi.KEY,
                 secret=fetch_fakeapi.SECRET)
    statuses = asset_statuses(cfg, ["AAA"], limiter=limiter(), transport=api.transport(),
                              sleep=clock.sleep)
    assert statuses.error == ("GET /v2/assets failed after 2 attempts: HTTP 200 with a JSON "
                              "body that is not an array")


def test_rejected_credentials_never_show_the_secret(server, tmp_path):
    statuses = asset_statuses(config(tmp_path, server.url, secret="wrong-secret-planted"),
                              ["AAPL"], limiter=limiter())
    assert statuses.error == (
        "the trading API rejected the credentials (HTTP 401): check APCA_API_KEY_ID and "
        "APCA_API_SECRET_KEY; paper-trading keys need "
        "APCA_API_BASE_URL=https://paper-api.alpaca.markets")
    assert "wrong-secret-planted" not in statuses.error


def test_the_body_is_bounded(server):
    with AlpacaBarsClient(server.url, KEY, SECRET, limiter=limiter(),
                          max_body_bytes=1000) as client, pytest.raises(RequestRejected) as info:
        client.get_json("/v2/assets", {}, expect="array")
    assert str(info.value) == ("GET /v2/assets: the answer (HTTP 200) is larger than 1,000 "
                               "bytes; stopped reading it")
    assert len(server.request_log) == 1  # not retried


# -- the fetch --------------------------------------------------------------------------
def test_a_symbol_inactive_at_the_server_ends_at_its_last_bar(server, stopped_market,
                                                              data_dir):
    report = fetch(data_dir, server, SYMBOLS)
    store = Store(data_dir)
    prices = read_prices(store)
    ko = prices.filter(pl.col("symbol") == "KO")
    served_ko = stopped_market.bars.filter(pl.col("symbol") == "KO")
    assert ko.get_column("date").to_list() == served_ko.get_column("date").to_list()
    assert ko.get_column("date").max() == CUT < prices.get_column("date").max()
    validation = json.loads(store.file_path("validation.json").read_text())
    assert validation["ok"] and not [f for f in validation["findings"]
                                     if f["check"] == "stale_symbol"]
    lines = report.summary_lines()
    assert f"KO inactive at the server: history ends {CUT}" in lines
    assert "active at the server but not tradable (closing trades only): PEP" in lines
    record = {"inactive": {"KO": CUT.isoformat()}, "not_tradable": ["PEP"], "unknown": [],
              "listed": len(SYMBOLS) + 1, "error": None}
    assert report.assets == record
    assert json.loads(store.file_path("fetch_report.json").read_text())["assets"] == record
    manifest = store.manifest()
    assert manifest.params["inactive"] == {"KO": CUT.isoformat()}
    assert manifest.prices_entry().meta("inactive") == {"KO": CUT.isoformat()}
    # the one asset request is counted with the others
    log = server.request_log
    assert [e.path for e in log].count("/v2/assets") == 1
    assert report.requests == len(log)
    # `aurora validate` (and so `aurora run`) ends KO as the fetch did
    cfg = config(data_dir, server.url)
    assert validate_store(store, cfg).ok
    # the next fetch, with nothing new, publishes nothing
    again = fetch(data_dir, server, SYMBOLS)
    assert again.unchanged and again.version == report.version


def test_an_inactive_symbol_without_bars_is_a_warning(server, data_dir):
    report = fetch(data_dir, server, [*SYMBOLS, "CELG"])
    assert "CELG inactive at the server: no bars in the fetched window" in report.summary_lines()
    assert ("[warning] missing_symbols CELG: universe symbol has no bars (inactive at the "
            "server: delisted)") in report.warnings
    assert report.assets is not None and report.assets["inactive"] == {
        "KO": CUT.isoformat(), "CELG": None}
    assert validate_store(Store(data_dir), config(data_dir, server.url)).ok


def test_without_the_statuses_a_stopped_symbol_is_stale_again(server, data_dir):
    server.faults.error(500, path=r"^/v2/assets$", count=10)
    with pytest.raises(DataValidationError) as info:
        fetch(data_dir, server, SYMBOLS)
    message = str(info.value)
    assert message.startswith("fetched prices failed validation with 1 error(s), first: "
                              "[error] stale_symbol KO: no bar after 2023-04-14: the last 53 "
                              "session(s) missing")
    assert f"; {UNAVAILABLE}; nothing was published" in message
    assert Store(data_dir).current_version() is None
    assert [e.status for e in server.request_log if e.path == "/v2/assets"] == [500, 500]


def test_without_the_statuses_a_stopped_symbol_is_quarantined_within_the_share(server,
                                                                              data_dir):
    """The statuses unavailable, a stale symbol is isolated like any defective one: the
    others are published and the quarantine names it (a new symbol has no stored bars to
    keep, so it has none until released or the server says it is inactive)."""
    server.faults.error(500, path=r"^/v2/assets$", count=10)
    report = fetch(data_dir, server, SYMBOLS, max_quarantine_share=0.2)
    assert report.version and UNAVAILABLE in report.warnings
    from aurora.quarantine import read_quarantine

    [entry] = read_quarantine(Store(data_dir)).quarantined.values()
    assert entry.symbol == "KO" and entry.check == "stale_symbol"
    prices = read_prices(Store(data_dir))
    assert sorted(prices["symbol"].unique()) == [s for s in SYMBOLS if s != "KO"]


def test_without_the_statuses_it_publishes_only_if_stale_symbol_is_no_error(server,
                                                                            data_dir):
    server.faults.error(500, path=r"^/v2/assets$", count=10)
    report = fetch(data_dir, server, SYMBOLS, severities={"stale_symbol": "warning"})
    assert report.version and UNAVAILABLE in report.warnings
    assert any(w.startswith("[warning] stale_symbol KO: no bar after 2023-04-14")
               for w in report.warnings)
    assert report.assets == {"inactive": {}, "not_tradable": [], "unknown": [], "listed": 0,
                             "error": "GET /v2/assets failed after 2 attempts: HTTP 500"}
    assert not any("inactive at the server" in line for line in report.summary_lines())
    store = Store(data_dir)
    assert store.manifest().params["inactive"] == {}
    assert store.manifest().prices_entry().meta("inactive") is None
    prices = read_prices(store)
    assert prices.filter(pl.col("symbol") == "KO").get_column("date").max() == CUT


def test_an_unreachable_trading_host_is_a_warning_and_quick(server, data_dir):
    clock = FakeClock(dt.datetime.now(dt.UTC).timestamp())
    cfg = config(data_dir, server.url, base_url="http://127.0.0.1:9", max_retries=3)
    report = fetch_prices(cfg, universe=["AAPL", "MSFT"], start=START, end=END, progress=None,
                          sleep=clock.sleep, clock=clock.time)
    assert report.version and report.assets is not None
    assert report.assets["error"] == ("GET /v2/assets failed after 4 attempts: connection "
                                      "error (ConnectError)")
    assert sum(clock.slept) <= 0.5 + 1 + 2 + 1  # its backoff: within the [fetch] settings
    assert report.requests == len(server.request_log) + 4  # the 4 attempts are counted
