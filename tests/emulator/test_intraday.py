"""Intraday bars (1Min, 5Min, 1Hour): synthetic minutes that agree with the daily bars."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

from aurora.calendar import session_close_utc, session_open_utc

DAY = dt.date(2023, 11, 24)  # a half day: the session ends at 13:00 New York
FULL = dt.date(2023, 11, 27)


def _bars(client, symbol: str, timeframe: str, start: str, end: str, **extra) -> list[dict]:
    out, token = [], None
    while True:
        params = {"symbols": symbol, "timeframe": timeframe, "start": start, "end": end,
                  "limit": 10000, **extra}
        if token:
            params["page_token"] = token
        body = client.get("/v2/stocks/bars", params=params).json()
        out += body["bars"].get(symbol, [])
        token = body["next_page_token"]
        if token is None:
            return out


def _frame(bars: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(bars).with_columns(
        pl.col("t").str.to_datetime(time_unit="us", time_zone="UTC"))


@pytest.mark.parametrize("adjustment", ["raw", "all"])
def test_regular_minutes_agree_with_the_daily_bar_and_extended_hours_are_outside(
        client, adjustment):
    for day in (DAY, FULL):
        lo, hi = f"{day}T08:00:00Z", f"{day + dt.timedelta(days=1)}T02:00:00Z"
        minutes = _frame(_bars(client, "AAPL", "1Min", lo, hi, adjustment=adjustment))
        (daily,) = _bars(client, "AAPL", "1Day", str(day), str(day), adjustment=adjustment)
        opening, closing = session_open_utc(day), session_close_utc(day)
        regular = minutes.filter(pl.col("t").is_between(opening, closing, closed="left"))
        assert regular["o"][0] == pytest.approx(daily["o"])
        assert regular["c"][-1] == pytest.approx(daily["c"])
        assert regular["h"].max() == pytest.approx(daily["h"])
        assert regular["l"].min() == pytest.approx(daily["l"])
        assert regular["v"].sum() == daily["v"] and regular["n"].sum() == daily["n"]
        extended = minutes.filter(~pl.col("t").is_between(opening, closing, closed="left"))
        assert extended.height > 0  # 04:00-09:30 and close-20:00, sparse
        local = extended["t"].dt.convert_time_zone("America/New_York")
        assert local.min().hour >= 4 and local.max().hour < 20
        assert (minutes["t"].dt.second() == 0).all()
        assert minutes["t"].is_sorted() and minutes["t"].n_unique() == minutes.height


def test_five_minute_and_hourly_bars_aggregate_the_minutes(client):
    lo, hi = f"{FULL}T13:00:00Z", f"{FULL}T21:00:00Z"
    minutes = _frame(_bars(client, "JPM", "1Min", lo, f"{FULL}T21:59:00Z"))
    for timeframe, every in (("5Min", "5m"), ("1Hour", "1h")):
        got = _frame(_bars(client, "JPM", timeframe, lo, hi))
        want = (minutes.group_by(pl.col("t").dt.truncate(every), maintain_order=True)
                .agg(o=pl.col("o").first(), h=pl.col("h").max(), l=pl.col("l").min(),
                     c=pl.col("c").last(), v=pl.col("v").sum(), n=pl.col("n").sum())
                .filter(pl.col("t") <= dt.datetime(2023, 11, 27, 21, tzinfo=dt.UTC)))
        assert got["t"].to_list() == want["t"].to_list()
        for column in ("o", "h", "l", "c", "v", "n"):
            assert got[column].to_list() == pytest.approx(want[column].to_list()), column


def test_pages_of_minute_bars_resume_without_gaps_or_repeats(client):
    lo, hi = f"{FULL}T00:00:00Z", f"{FULL + dt.timedelta(days=3)}T00:00:00Z"
    whole = _bars(client, "MSFT", "1Min", lo, hi)
    small = []
    token = None
    while True:
        params = {"symbols": "MSFT", "timeframe": "1Min", "start": lo, "end": hi,
                  "limit": 97}
        if token:
            params["page_token"] = token
        body = client.get("/v2/stocks/bars", params=params).json()
        small += body["bars"].get("MSFT", [])
        token = body["next_page_token"]
        if token is None:
            break
    assert small == whole and len(whole) > 3 * 390


def test_only_finished_minutes_of_today_are_served(make_server, auth, tls_context):
    import httpx

    now = dt.datetime(2023, 11, 27, 15, 0, 30, tzinfo=dt.UTC)  # 10:00:30 New York
    server = make_server(clock=lambda: now)
    with httpx.Client(base_url=server.url, headers=auth, verify=tls_context) as c:
        bars = _frame(_bars(c, "AAPL", "1Min", "2023-11-27T09:00:00Z",
                            "2023-11-27T23:00:00Z"))
        assert bars["t"].max() == dt.datetime(2023, 11, 27, 14, 59, tzinfo=dt.UTC)
        daily = c.get("/v2/stocks/bars", params={"symbols": "AAPL", "timeframe": "1Day",
                                                  "start": "2023-11-27"}).json()
        assert daily["bars"] == {}  # no partial daily bar


def test_alpaca_py_reads_the_emulators_minute_bars(server, auth):
    sdk = StockHistoricalDataClient(auth["APCA-API-KEY-ID"], auth["APCA-API-SECRET-KEY"],
                                    url_override=server.url)
    request = StockBarsRequest(symbol_or_symbols=["AAPL", "JNJ"],
                               timeframe=TimeFrame(5, TimeFrameUnit.Minute),
                               start=dt.datetime(2023, 11, 27, 14, tzinfo=dt.UTC),
                               end=dt.datetime(2023, 11, 28, 1, tzinfo=dt.UTC))
    got = sdk.get_stock_bars(request).data
    assert set(got) == {"AAPL", "JNJ"}
    assert all(b.timestamp.minute % 5 == 0 for b in got["AAPL"])
    assert len(got["AAPL"]) >= (21 - 14) * 12 - 12  # the session, plus sparse after-hours
