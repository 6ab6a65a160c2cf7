"""Fixtures: a small hand-built raw market and an in-process emulator on 127.0.0.1:0.

The market is a deterministic random walk per symbol over NYSE sessions, with scripted
corporate actions whose effect the tests can compute by hand:
* AAPL 4-for-1 forward split, ex 2022-08-31 (raw prices drop ~4x, volume ~4x);
* JNJ cash dividends of 1.00 ex 2022-05-20 and 1.10 ex 2022-11-21;
* FB renamed META from 2022-06-09 (bars labelled FB before, META from that session on);
  META also carries the bars of an unrelated ETF before 2022-01-31 (ticker reuse);
* XOM 1-for-2 reverse split, ex 2023-03-01.
"""

from __future__ import annotations

import datetime as dt
import ssl

import httpx
import numpy as np
import polars as pl
import pytest

from aurora.calendar import sessions
from aurora_testbed.emulator import EmulatorServer, MarketData

KEY, SECRET = "TESTKEY", "test-secret-value"
START, END = dt.date(2021, 11, 1), dt.date(2024, 1, 31)
# A fake "now" well after the data: defaults and adjustments as-of are deterministic.
NOW = dt.datetime(2024, 3, 1, 15, 0, tzinfo=dt.UTC)
CORE = ("AAPL", "JNJ", "JPM", "MSFT", "XOM")


def random_walk(symbol: str, days: list[dt.date], seed: int, base: float) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = base * np.exp(np.cumsum(rng.normal(0, 0.015, len(days))))
    open_ = close * (1 + rng.normal(0, 0.004, len(days)))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, len(days)))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, len(days)))
    volume = rng.integers(1_000_000, 9_000_000, len(days)).astype(float)
    return pl.DataFrame({
        "date": days, "symbol": symbol, "open": open_.round(2), "high": high.round(2),
        "low": low.round(2), "close": close.round(2), "volume": volume,
        "vwap": ((high + low + close) / 3).round(4),
        "trade_count": (volume // 90).astype(np.int64),
    })


def _scale_before(frame: pl.DataFrame, ex: dt.date, price: float, volume: float) -> pl.DataFrame:
    before = pl.col("date") < ex
    return frame.with_columns(
        [pl.when(before).then(pl.col(c) * price).otherwise(pl.col(c)).round(2).alias(c)
         for c in ("open", "high", "low", "close", "vwap")]
        + [pl.when(before).then(pl.col("volume") * volume).otherwise(pl.col("volume"))
           .alias("volume")]
    )


def build_market(extra_symbols: int = 0) -> MarketData:
    days = sessions(START, END)
    frames = []
    for i, sym in enumerate((*CORE, *(f"S{j:03d}" for j in range(extra_symbols)))):
        frame = random_walk(sym, days, seed=100 + i, base=50.0 + 10 * i)
        if sym == "AAPL":  # raw series: prices were 4x higher before the split
            frame = _scale_before(frame, dt.date(2022, 8, 31), 4.0, 0.25)
        if sym == "XOM":  # 1-for-2 reverse: prices were half before
            frame = _scale_before(frame, dt.date(2023, 3, 1), 0.5, 2.0)
        frames.append(frame)
    rename = dt.date(2022, 6, 9)
    entity = random_walk("FB", days, seed=7, base=200.0)
    frames.append(entity.filter(pl.col("date") < rename))
    frames.append(entity.filter(pl.col("date") >= rename).with_columns(symbol=pl.lit("META")))
    etf = random_walk("META", days, seed=8, base=20.0)
    frames.append(etf.filter(pl.col("date") < dt.date(2022, 1, 31)))
    actions = pl.DataFrame(
        {
            "id": ["a-split", "j-div-1", "j-div-2", "fb-meta", "x-rev"],
            "action_type": ["forward_split", "cash_dividend", "cash_dividend", "name_change",
                            "reverse_split"],
            "symbol": ["AAPL", "JNJ", "JNJ", "META", "XOM"],
            "old_symbol": [None, None, None, "FB", None],
            "ex_date": [dt.date(2022, 8, 31), dt.date(2022, 5, 20), dt.date(2022, 11, 21),
                        rename, dt.date(2023, 3, 1)],
            "process_date": [dt.date(2022, 8, 31), dt.date(2022, 5, 20),
                             dt.date(2022, 11, 21), rename, dt.date(2023, 3, 1)],
            "old_rate": [1.0, None, None, None, 2.0],
            "new_rate": [4.0, None, None, None, 1.0],
            "cash_rate": [None, 1.0, 1.1, None, None],
        },
        schema_overrides={"old_symbol": pl.String},
    )
    return MarketData(pl.concat(frames), actions)


@pytest.fixture(scope="session")
def market() -> MarketData:
    return build_market()


@pytest.fixture(scope="session")
def market_builder():
    """build_market(extra_symbols) -> the fixture market plus S000.. random-walk symbols."""
    return build_market


@pytest.fixture()
def make_server(market):
    """Factory: make_server(**EmulatorServer kwargs) -> a started server, stopped at teardown."""
    started: list[EmulatorServer] = []

    def make(data: MarketData | None = None, **kwargs) -> EmulatorServer:
        kwargs.setdefault("clock", lambda: NOW)
        srv = EmulatorServer(data or market, {KEY: SECRET}, **kwargs)
        srv.start()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


@pytest.fixture()
def server(make_server):
    return make_server()


@pytest.fixture()
def auth() -> dict[str, str]:
    return {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}


@pytest.fixture(scope="session")
def tls_context() -> ssl.SSLContext:
    """One TLS context for every httpx client (building one per client costs ~0.1 s)."""
    return ssl.create_default_context()


@pytest.fixture()
def client(server, auth, tls_context):
    with httpx.Client(base_url=server.url, headers=auth, timeout=10, verify=tls_context) as c:
        yield c


def _fetch_all(client: httpx.Client, path: str, params: dict) -> tuple[dict, list[dict]]:
    """Follow next_page_token to the end; returns merged bars and the raw page bodies."""
    merged: dict[str, list[dict]] = {}
    pages: list[dict] = []
    token = None
    while True:
        query = dict(params) | ({"page_token": token} if token else {})
        resp = client.get(path, params=query)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        pages.append(body)
        for sym, bars in body["bars"].items():
            merged.setdefault(sym, []).extend(bars)
        token = body["next_page_token"]
        if token is None:
            return merged, pages


@pytest.fixture()
def fetch_all():
    """fetch_all(client, path, params) -> (bars merged per symbol, list of page bodies)."""
    return _fetch_all
