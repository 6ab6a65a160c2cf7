"""/v2/assets and /v2/assets/{symbol_or_id}: the trading API's assets, derived or explicit."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
import polars as pl
import pytest

from aurora.calendar import sessions
from aurora.errors import DataValidationError
from aurora_testbed.emulator import Asset, MarketData
from aurora_testbed.emulator.assets_api import asset_id

FIELDS = {"id", "class", "exchange", "symbol", "name", "status", "tradable", "marginable",
          "maintenance_margin_requirement", "shortable", "easy_to_borrow", "fractionable",
          "attributes"}


@pytest.fixture(scope="module")
def assets_market(market_builder) -> MarketData:
    """The fixture market plus a class share (BRK.B), an active symbol that is not tradable
    (JPM) and JNJ listed with an attribute."""
    return (market_builder().with_status("JPM")
            .with_assets(Asset("BRK.B", exchange="NYSE"),
                         Asset("JNJ", attributes=("ptp_no_exception",))))


@pytest.fixture()
def assets_client(make_server, assets_market, auth, tls_context):
    srv = make_server(assets_market)
    with httpx.Client(base_url=srv.url, headers=auth, timeout=10, verify=tls_context) as c:
        c.server = srv  # type: ignore[attr-defined]
        yield c


def test_one_sorted_array_with_alpaca_fields(assets_client):
    resp = assets_client.get("/v2/assets")
    assert resp.status_code == 200 and "X-RateLimit-Remaining" in resp.headers
    rows = resp.json()
    assert isinstance(rows, list) and all(set(r) == FIELDS for r in rows)
    assert [(r["class"], r["exchange"], r["symbol"]) for r in rows] == sorted(
        (r["class"], r["exchange"], r["symbol"]) for r in rows)
    by_symbol = {r["symbol"]: r for r in rows}
    assert sorted(by_symbol) == ["AAPL", "BRK.B", "FB", "JNJ", "JPM", "META", "MSFT", "XOM"]
    # renamed away (FB -> META): inactive and not tradable; the rest active
    assert (by_symbol["FB"]["status"], by_symbol["FB"]["tradable"]) == ("inactive", False)
    assert (by_symbol["META"]["status"], by_symbol["META"]["tradable"]) == ("active", True)
    assert (by_symbol["JPM"]["status"], by_symbol["JPM"]["tradable"]) == ("active", False)
    assert by_symbol["JPM"]["marginable"] is by_symbol["JPM"]["shortable"] is False
    brk = by_symbol["BRK.B"]
    assert (brk["exchange"], brk["status"], brk["tradable"], brk["class"]) == (
        "NYSE", "active", True, "us_equity")
    assert by_symbol["JNJ"]["attributes"] == ["ptp_no_exception"]
    for row in rows:
        assert uuid.UUID(row["id"]) and row["id"] == asset_id(row["symbol"])
        assert row["exchange"] in ("NASDAQ", "NYSE") and row["name"]
    assert rows == assets_client.get("/v2/assets").json()  # deterministic


def test_filters(assets_client):
    def symbols(**params):
        resp = assets_client.get("/v2/assets", params=params)
        assert resp.status_code == 200, resp.text
        return [r["symbol"] for r in resp.json()]

    assert symbols(status="inactive") == ["FB"]
    assert "FB" not in symbols(status="active") and "JPM" in symbols(status="active")
    assert set(symbols(exchange="NYSE")) == {r.symbol for r in
                                             assets_client.server.market.assets
                                             if r.exchange == "NYSE"}
    assert "BRK.B" in symbols(exchange="NYSE", asset_class="us_equity")
    assert symbols(asset_class="crypto") == []
    assert symbols(attributes="ptp_no_exception,ptp_with_exception") == ["JNJ"]
    for params, text in (({"status": "halted"}, "invalid status"),
                         ({"exchange": "LSE"}, "invalid exchange"),
                         ({"asset_class": "bonds"}, "invalid asset_class")):
        resp = assets_client.get("/v2/assets", params=params)
        assert resp.status_code == 400 and resp.json()["message"].startswith(text)


def test_one_asset_by_symbol_or_id_and_404(assets_client):
    brk = assets_client.get("/v2/assets/BRK.B")
    assert brk.status_code == 200 and brk.json()["symbol"] == "BRK.B"
    assert assets_client.get("/v2/assets/brk.b").json() == brk.json()
    assert assets_client.get(f"/v2/assets/{brk.json()['id']}").json() == brk.json()
    assert assets_client.get("/v2/assets/FB").json()["status"] == "inactive"
    missing = assets_client.get("/v2/assets/NOPE")
    assert missing.status_code == 404
    assert missing.json() == {"code": 40410000, "message": "asset not found for NOPE"}


def test_same_auth_rate_limit_faults_and_log(assets_client, make_server, assets_market,
                                             tls_context):
    srv = assets_client.server
    assert httpx.get(srv.url + "/v2/assets", verify=tls_context).status_code == 401
    srv.faults.error(500, path=r"^/v2/assets$")
    assert assets_client.get("/v2/assets").status_code == 500
    assert assets_client.get("/v2/assets").status_code == 200
    assert [(e.path, e.status, e.fault) for e in srv.request_log] == [
        ("/v2/assets", 401, None), ("/v2/assets", 500, "error:500"), ("/v2/assets", 200, None)]
    limited = make_server(assets_market, rate_limit_per_minute=1)
    with httpx.Client(base_url=limited.url, headers=assets_client.headers, verify=tls_context,
                      timeout=10) as c:
        assert c.get("/v2/assets").status_code == 200
        second = c.get("/v2/assets/AAPL")
        assert second.status_code == 429 and second.headers["X-RateLimit-Remaining"] == "0"


def _bars(symbol: str, days: list[dt.date]) -> pl.DataFrame:
    n = len(days)
    return pl.DataFrame({"date": days, "symbol": [symbol] * n, "open": [10.0] * n,
                         "high": [11.0] * n, "low": [9.0] * n, "close": [10.5] * n,
                         "volume": [1000.0] * n})


def test_derived_delisting_is_more_than_five_sessions_behind():
    days = sessions(dt.date(2024, 1, 2), dt.date(2024, 3, 28))
    market = MarketData(pl.concat([
        _bars("LIVE", days), _bars("HALT", days[:-5]), _bars("GONE", days[:-6])]))
    statuses = {a.symbol: (a.status, a.tradable) for a in market.assets}
    assert statuses == {"LIVE": ("active", True), "HALT": ("active", True),
                        "GONE": ("inactive", False)}
    # explicit rows replace the derived ones entirely
    explicit = MarketData(market.bars, assets=[Asset("LIVE", "inactive", False)])
    assert [(a.symbol, a.status) for a in explicit.assets] == [("LIVE", "inactive")]
    marked = market.with_status("LIVE", "NEW")
    assert {a.symbol: (a.status, a.tradable) for a in marked.assets} == {
        **statuses, "LIVE": ("active", False), "NEW": ("active", False)}
    assert market.assets == MarketData(market.bars).assets  # the original is unchanged


def test_bad_asset_rows_are_refused():
    days = sessions(dt.date(2024, 1, 2), dt.date(2024, 1, 31))
    with pytest.raises(DataValidationError, match="listed twice"):
        MarketData(_bars("AAA", days), assets=[Asset("AAA"), Asset("aaa")])
    with pytest.raises(DataValidationError, match="status must be active or inactive"):
        Asset("AAA", "halted")  # type: ignore[arg-type]
    with pytest.raises(DataValidationError, match="unknown exchange"):
        Asset("AAA", exchange="LSE")


def test_alpaca_py_reads_the_assets(assets_client):
    """Conformance: alpaca-py's TradingClient parses every asset into its model."""
    trading = pytest.importorskip("alpaca.trading.client")
    from alpaca.common.exceptions import APIError
    from alpaca.trading.enums import AssetClass, AssetStatus
    from alpaca.trading.requests import GetAssetsRequest

    headers = assets_client.headers
    client = trading.TradingClient(headers["APCA-API-KEY-ID"], headers["APCA-API-SECRET-KEY"],
                                   url_override=assets_client.server.url)
    assets = client.get_all_assets()
    assert len(assets) == 8 and all(a.asset_class == AssetClass.US_EQUITY for a in assets)
    inactive = client.get_all_assets(GetAssetsRequest(status=AssetStatus.INACTIVE))
    assert [(a.symbol, a.tradable) for a in inactive] == [("FB", False)]
    brk = client.get_asset("BRK.B")
    assert (brk.symbol, brk.status, str(brk.id)) == ("BRK.B", AssetStatus.ACTIVE,
                                                     asset_id("BRK.B"))
    with pytest.raises(APIError) as info:
        client.get_asset("NOPE")
    assert info.value.status_code == 404 and info.value.code == 40410000
