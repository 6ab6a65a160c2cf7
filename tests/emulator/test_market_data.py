"""MarketData: validation of what the emulator serves, Parquet and synthetic sources."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import polars as pl
import pytest

from aurora.errors import DataValidationError
from aurora_testbed.emulator import MarketData

SAMPLE = Path("/work/shared/data/sp500-sample/prices.parquet")


def _bars(**overrides) -> pl.DataFrame:
    frame = pl.DataFrame({
        "date": [dt.date(2023, 1, 3), dt.date(2023, 1, 4)], "symbol": ["AAA", "AAA"],
        "open": [1.0, 2.0], "high": [1.5, 2.5], "low": [0.5, 1.5], "close": [1.2, 2.2],
        "volume": [100.0, 200.0],
    })
    return frame.with_columns(**overrides) if overrides else frame


def test_bad_bars_are_rejected_naming_the_row():
    with pytest.raises(DataValidationError, match="lack column"):
        MarketData(_bars().drop("close"))
    with pytest.raises(DataValidationError, match=r"missing value, first AAA 2023-01-04"):
        MarketData(_bars(close=pl.Series([1.2, None])))
    with pytest.raises(DataValidationError, match=r"duplicate bar for AAA 2023-01-03"):
        MarketData(_bars(date=pl.lit(dt.date(2023, 1, 3))))


def test_bad_actions_are_rejected():
    actions = pl.DataFrame({
        "id": ["x"], "action_type": ["spin_off"], "symbol": ["AAA"], "old_symbol": [None],
        "ex_date": [dt.date(2023, 1, 4)], "process_date": [dt.date(2023, 1, 4)],
        "old_rate": [None], "new_rate": [None], "cash_rate": [None],
    }, schema_overrides={"old_symbol": pl.String, "old_rate": pl.Float64,
                         "new_rate": pl.Float64, "cash_rate": pl.Float64})
    with pytest.raises(DataValidationError, match="unknown type 'spin_off'"):
        MarketData(_bars(), actions)
    with pytest.raises(DataValidationError, match="no old_symbol"):
        MarketData(_bars(), actions.with_columns(action_type=pl.lit("name_change")))


def test_from_parquet_without_vwap_and_trade_count(tmp_path, make_server, auth, tls_context):
    path = tmp_path / "prices.parquet"
    _bars(adj_close=pl.col("close") * 0.9).write_parquet(path)
    market = MarketData.from_parquet(path)
    assert market.bars.columns == ["date", "symbol", "open", "high", "low", "close", "volume"]
    assert market.corporate_actions.height == 0
    srv = make_server(market)
    with httpx.Client(base_url=srv.url, headers=auth, verify=tls_context) as c:
        query = {"symbols": "AAA", "timeframe": "1Day", "start": "2023-01-01"}
        raw = c.get("/v2/stocks/bars", params=query).json()["bars"]["AAA"]
        assert raw == [
            {"t": "2023-01-03T05:00:00Z", "o": 1.0, "h": 1.5, "l": 0.5, "c": 1.2, "v": 100},
            {"t": "2023-01-04T05:00:00Z", "o": 2.0, "h": 2.5, "l": 1.5, "c": 2.2, "v": 200}]
        # no corporate actions: the adjusted modes serve the same prices
        assert c.get("/v2/stocks/bars", params=query | {"adjustment": "all"}).json()[
            "bars"]["AAA"] == raw
    with pytest.raises(DataValidationError, match="not found"):
        MarketData.from_parquet(tmp_path / "missing.parquet")


@pytest.mark.skipif(not SAMPLE.exists(), reason="sp500 sample not available")
def test_the_real_sample_loads_and_serves(make_server, auth, tls_context):
    market = MarketData.from_parquet(SAMPLE)
    assert market.bars.height == 130_000 and "adj_close" not in market.bars.columns
    srv = make_server(market)
    with httpx.Client(base_url=srv.url, headers=auth, verify=tls_context) as c:
        body = c.get("/v2/stocks/bars", params={
            "symbols": "AMZN", "timeframe": "1Day", "start": "2016-01-04",
            "end": "2016-01-04"}).json()
    row = market.bars.filter(pl.col("symbol") == "AMZN", pl.col("date") == dt.date(2016, 1, 4))
    (bar,) = body["bars"]["AMZN"]
    assert bar["t"] == "2016-01-04T05:00:00Z" and bar["c"] == row["close"][0]
    assert "n" not in bar and "vw" not in bar


def test_synthetic_market_comes_from_generate_market():
    from aurora_testbed.synthetic import generate_market

    start, end = dt.date(2022, 5, 1), dt.date(2022, 7, 29)
    market = MarketData.synthetic(["AAPL", "META"], start, end, seed=11)
    reference = generate_market(["AAPL", "META"], start, end, seed=11)
    assert market.bars.equals(reference.bars.sort("symbol", "date"))
    renames = market.corporate_actions.filter(pl.col("action_type") == "name_change")
    assert renames.select("symbol", "old_symbol").row(0) == ("META", "FB")
