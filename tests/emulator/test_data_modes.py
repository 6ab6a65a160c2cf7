"""What the bars contain: adjustments, feeds and the asof rename mapping."""

from __future__ import annotations

import datetime as dt

import httpx
import polars as pl
import pytest

from aurora.adjustments import adjust_bars
from aurora.calendar import sessions

YEAR = {"timeframe": "1Day", "start": "2022-01-01", "end": "2023-12-31", "limit": 10000}


def _served(client: httpx.Client, symbol: str, **params) -> list[dict]:
    body = client.get("/v2/stocks/bars", params=YEAR | {"symbols": symbol} | params).json()
    assert body["next_page_token"] is None
    return body["bars"].get(symbol, [])


def _expected(market, symbol: str, mode: str, as_of: dt.date) -> pl.DataFrame:
    raw = market.bars.filter(pl.col("symbol") == symbol)
    adjusted = adjust_bars(raw, market.corporate_actions, mode, as_of=as_of)
    return adjusted.filter(pl.col("date").is_between(dt.date(2022, 1, 1), dt.date(2023, 12, 31)))


@pytest.mark.parametrize("mode", ["raw", "split", "dividend", "all"])
@pytest.mark.parametrize("symbol", ["AAPL", "JNJ", "XOM", "MSFT"])
def test_adjusted_bars_equal_adjust_bars(client, market, mode, symbol):
    served = _served(client, symbol, adjustment=mode)
    expected = _expected(market, symbol, mode, dt.date(2024, 3, 1))
    assert len(served) == expected.height
    for bar, row in zip(served, expected.iter_rows(named=True), strict=True):
        for key, col in (("o", "open"), ("h", "high"), ("l", "low"), ("c", "close"),
                         ("vw", "vwap")):
            assert bar[key] == pytest.approx(row[col], rel=1e-12), (bar["t"], key)
        assert bar["v"] == round(row["volume"])
        assert bar["n"] == row["trade_count"]


def test_adjustment_effects_by_hand(client, market):
    raw = _served(client, "AAPL")
    split = _served(client, "AAPL", adjustment="split")
    combo = _served(client, "AAPL", adjustment="split,dividend")
    assert combo == _served(client, "AAPL", adjustment="all")
    ex = next(i for i, b in enumerate(raw) if b["t"].startswith("2022-08-31"))
    # raw shows the 4-for-1 jump; split-adjusted earlier prices are a quarter, volume 4x
    assert raw[ex - 1]["c"] / raw[ex]["c"] > 3
    assert split[ex - 1]["c"] == pytest.approx(raw[ex - 1]["c"] / 4)
    assert split[ex - 1]["v"] == raw[ex - 1]["v"] * 4
    assert split[ex:] == raw[ex:]
    jnj_raw, jnj_div = _served(client, "JNJ"), _served(client, "JNJ", adjustment="dividend")
    closes = {b["t"][:10]: b["c"] for b in jnj_raw}
    factor = (1 - 1.0 / closes["2022-05-19"]) * (1 - 1.1 / closes["2022-11-18"])
    first = jnj_div[0]
    assert first["c"] == pytest.approx(jnj_raw[0]["c"] * factor)
    assert first["v"] == jnj_raw[0]["v"]  # dividends leave volume alone


def test_actions_after_the_fake_now_are_not_applied(make_server, auth, tls_context):
    srv = make_server(clock=lambda: dt.datetime(2022, 8, 1, 21, tzinfo=dt.UTC))
    with httpx.Client(base_url=srv.url, headers=auth, verify=tls_context) as c:
        query = {"symbols": "AAPL", "timeframe": "1Day", "start": "2022-01-01"}
        raw = c.get("/v2/stocks/bars", params=query).json()["bars"]["AAPL"]
        split = c.get("/v2/stocks/bars", params=query | {"adjustment": "split"}).json()
        assert split["bars"]["AAPL"] == raw  # the split is in the future of this "now"
        assert raw[-1]["t"] == "2022-08-01T04:00:00Z"


def test_iex_feed_is_thinner_and_slightly_different(client):
    sip, iex = _served(client, "MSFT"), _served(client, "MSFT", feed="iex")
    assert _served(client, "MSFT", feed="iex") == iex  # deterministic
    assert _served(client, "MSFT", feed="delayed_sip") == sip
    assert [b["t"] for b in iex] == [b["t"] for b in sip]
    moved = 0
    for s, i in zip(sip, iex, strict=True):
        assert 0.01 * s["v"] <= i["v"] <= 0.04 * s["v"]
        assert 0.015 * s["n"] <= i["n"] <= 0.045 * s["n"]
        assert abs(i["c"] / s["c"] - 1) < 0.0006
        assert i["l"] <= i["c"] <= i["h"]
        assert (i["o"], i["h"], i["l"]) == (s["o"], s["h"], s["l"])
        moved += i["c"] != s["c"]
    assert moved > len(sip) // 2


def test_feeds_without_trading_have_no_bars(client):
    body = client.get("/v2/stocks/bars", params=YEAR | {"symbols": "MSFT", "feed": "otc"}).json()
    assert body == {"bars": {}, "next_page_token": None}


def _days(bars: list[dict]) -> list[str]:
    return [b["t"][:10] for b in bars]


def test_asof_maps_pre_rename_history_under_the_queried_symbol(client, market):
    days_2022 = [d.isoformat() for d in sessions(dt.date(2022, 1, 1), dt.date(2022, 12, 31))]
    meta = _served(client, "META", end="2022-12-31")
    assert _days(meta) == days_2022  # FB history, not the old META ETF, fills the first half
    fb_raw = market.bars.filter(pl.col("symbol") == "FB", pl.col("date") >= dt.date(2022, 1, 1))
    assert [b["c"] for b in meta[: fb_raw.height]] == fb_raw["close"].to_list()
    assert meta[fb_raw.height]["t"] == "2022-06-09T04:00:00Z"


def test_asof_dash_returns_data_as_labelled_at_the_time(client, market):
    unmapped = _served(client, "META", end="2022-12-31", asof="-")
    days = _days(unmapped)
    assert days[0] == "2022-01-03" and "2022-01-28" in days  # the ETF that used the ticker
    assert "2022-02-01" not in days and "2022-06-08" not in days
    assert "2022-06-09" in days
    etf = market.bars.filter(pl.col("symbol") == "META", pl.col("date") == dt.date(2022, 1, 3))
    assert unmapped[0]["c"] == etf["close"][0]


def test_old_symbol_after_the_rename_returns_only_data_traded_under_it(client):
    for params in ({}, {"asof": "2023-01-01"}, {"asof": "2022-03-01"}, {"asof": "-"}):
        fb = _served(client, "FB", **params)
        assert _days(fb)[0] == "2022-01-03" and _days(fb)[-1] == "2022-06-08", params


def test_asof_before_the_rename_does_not_map(client):
    early = _served(client, "META", end="2022-12-31", asof="2022-03-01")
    assert _days(early) == _days(_served(client, "META", end="2022-12-31", asof="-"))
    both = client.get("/v2/stocks/bars", params=YEAR | {
        "symbols": "FB,META", "end": "2022-06-10"}).json()["bars"]
    assert _days(both["FB"])[-1] == "2022-06-08"
    assert _days(both["META"])[-2:] == ["2022-06-09", "2022-06-10"]
    assert len(both["META"]) == len(both["FB"]) + 2
