"""Corporate-actions parsing/paging, concurrent batches, and the `aurora import` commands."""

from __future__ import annotations

import datetime as dt

import httpx
import polars as pl
import pytest
from fetch_fakeapi import KEY, SECRET, FakeAlpaca, make_bars

from aurora.cli.main import main
from aurora.config import AlpacaConfig, AuroraConfig, FetchConfig
from aurora.errors import FetchError
from aurora.fetch import fetch_prices
from aurora.fetch.client import AlpacaBarsClient
from aurora.fetch.corporate_actions import fetch_corporate_actions, merge_actions, parse_actions
from aurora.fetch.ratelimit import RateLimiter
from aurora.store import Store
from aurora.store.bars import read_prices
from aurora.universe import Universe

D = dt.date
PAGE1 = {"corporate_actions": {
    "forward_splits": [{"id": "s1", "symbol": "NVDA", "cusip": "X", "new_rate": 10,
                        "old_rate": 1, "process_date": "2024-06-10", "ex_date": "2024-06-10",
                        "record_date": "2024-06-06"}],
    "reverse_splits": [{"id": "r1", "symbol": "GE", "old_cusip": "A", "new_cusip": "B",
                        "new_rate": 1, "old_rate": 8, "process_date": "2021-08-02",
                        "ex_date": "2021-08-02"}],
    "spin_offs": [{"id": "x1", "source_symbol": "GE", "source_rate": 3, "new_symbol": "GEHC",
                   "new_rate": 1, "process_date": "2023-01-04", "ex_date": "2023-01-04"}],
}, "next_page_token": "abc"}
PAGE2 = {"corporate_actions": {
    "name_changes": [{"id": "n1", "old_symbol": "FB", "new_symbol": "META", "old_cusip": "C",
                      "new_cusip": "D", "process_date": "2022-06-09"}],
    "cash_dividends": [{"id": "d1", "symbol": "KO", "rate": 0.46, "special": False,
                        "foreign": False, "process_date": "2024-03-15",
                        "ex_date": "2024-03-14", "cusip": "E"}],
}, "next_page_token": None}


def test_corporate_actions_pages_merge_into_the_shared_schema(clock):
    pages = [PAGE1, PAGE2]
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.url.params))
        return httpx.Response(200, json=pages[len(seen) - 1])

    client = AlpacaBarsClient("http://api.test", KEY, SECRET, limiter=RateLimiter(
        1000, clock=clock.time, sleep=clock.sleep), transport=httpx.MockTransport(handler))
    table = fetch_corporate_actions(client, ["NVDA", "GE", "META", "KO"], D(2020, 1, 1),
                                    D(2024, 12, 31))
    assert seen[0]["types"] == ("forward_split,reverse_split,stock_dividend,cash_dividend,"
                                "name_change,spin_off")
    assert seen[0]["start"] == "2020-01-01" and seen[0]["limit"] == "1000"
    assert seen[1]["page_token"] == "abc"
    rows = {r["id"]: r for r in table.to_dicts()}
    assert set(rows) == {"s1", "r1", "n1", "d1", "x1"}
    assert (rows["s1"]["old_rate"], rows["s1"]["new_rate"]) == (1.0, 10.0)
    assert rows["r1"]["action_type"] == "reverse_split" and rows["r1"]["old_rate"] == 8.0
    assert rows["n1"] | {} == {"id": "n1", "action_type": "name_change", "symbol": "META",
                               "old_symbol": "FB", "ex_date": D(2022, 6, 9),
                               "process_date": D(2022, 6, 9), "old_rate": None,
                               "new_rate": None, "cash_rate": None, "target_symbol": None}
    # a spin-off: parent GE, 1 GEHC per 3 GE (Alpaca's source_rate and new_rate)
    assert (rows["x1"]["action_type"], rows["x1"]["symbol"], rows["x1"]["target_symbol"],
            rows["x1"]["old_rate"], rows["x1"]["new_rate"], rows["x1"]["ex_date"]) == (
        "spin_off", "GE", "GEHC", 3.0, 1.0, D(2023, 1, 4))
    assert rows["d1"]["cash_rate"] == 0.46 and rows["d1"]["ex_date"] == D(2024, 3, 14)
    merged = merge_actions(table.filter(pl.col("id") != "d1"), table.filter(pl.col("id") == "d1"))
    assert merged.height == 5


def test_a_stock_dividend_is_a_split_of_one_into_one_plus_its_rate():
    """5% stock dividend: 1 share becomes 1.05; earlier prices x 1/1.05, volumes x 1.05."""
    from aurora.adjustments import adjust_bars

    payload = {"corporate_actions": {"stock_dividends": [
        {"id": "s5", "symbol": "AAA", "cusip": "000", "rate": 0.05, "ex_date": "2024-01-03",
         "process_date": "2024-01-03", "record_date": "2024-01-04",
         "payable_date": "2024-01-10"}]}}
    [row] = parse_actions(payload)
    assert (row["action_type"], row["old_rate"], row["new_rate"]) == ("stock_dividend", 1.0,
                                                                      1.05)
    bars = pl.DataFrame({"date": [D(2024, 1, 2), D(2024, 1, 3)], "symbol": ["AAA"] * 2,
                         "open": [105.0, 100.0], "high": [105.0, 100.0],
                         "low": [105.0, 100.0], "close": [105.0, 100.0],
                         "volume": [1000.0, 1050.0]})
    adjusted = adjust_bars(bars, pl.DataFrame([row]), "all")
    assert adjusted["close"].to_list() == pytest.approx([100.0, 100.0], rel=1e-15)
    assert adjusted["volume"].to_list() == pytest.approx([1050.0, 1050.0], rel=1e-15)


def test_corporate_action_missing_field_is_a_clear_error():
    bad = {"corporate_actions": {"cash_dividends": [{"id": "d9", "symbol": "KO"}]}}
    with pytest.raises(FetchError, match="cash_dividend d9"):
        parse_actions(bad)


def test_concurrent_batches_give_the_same_store(data_dir, tmp_path, clock):
    symbols = [f"S{i}" for i in range(7)]
    api = FakeAlpaca(make_bars(symbols, D(2024, 1, 2), D(2024, 2, 29)))

    def config(path, workers):
        return AuroraConfig(data_dir=path, alpaca=AlpacaConfig(
            key_id=KEY, secret_key=SECRET, data_url="http://api.test",
            base_url="http://api.test"),
            fetch=FetchConfig(batch_size=2, concurrency=workers))

    universe = Universe(tuple(symbols), {}, "t")
    for path, workers in ((data_dir, 1), (tmp_path / "other", 3)):
        fetch_prices(config(path, workers), universe=universe, start=D(2024, 1, 2),
                     end=D(2024, 2, 29), progress=None, sleep=clock.sleep, clock=clock.time,
                     transport=api.transport())
    one, many = (read_prices(Store(p))
                 for p in (data_dir, tmp_path / "other"))
    assert one.height == 7 * 41 and one.equals(many)


def test_cli_import_commands(tmp_path, data_dir, capsys):
    sectors = tmp_path / "sectors.csv"
    sectors.write_text("symbol,sector\nAAPL,Information Technology\nBRK-B,Financials\n")
    funds = tmp_path / "f.csv"
    funds.write_text("symbol,as_of,market_cap\nAAPL,2024-01-02,3.0\nBRK.B,2024-01-02,0.9\n")
    assert main(["import", "sector-map", str(sectors), "--data-dir", str(data_dir)]) == 0
    assert main(["import", "fundamentals", str(funds), "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "imported sector map: 2 rows" in out and "billions" in out
    store = Store(data_dir)
    assert set(store.manifest().files) == {"sector_map.parquet", "fundamentals.parquet"}
    bad = tmp_path / "bad.csv"
    bad.write_text("symbol,as_of,market_cap\nAAPL,yesterday,3\n")
    assert main(["import", "fundamentals", str(bad), "--data-dir", str(data_dir)]) == 5
    err = capsys.readouterr().err
    assert err.startswith("error: ") and f"{bad}: row 2" in err and "Traceback" not in err


def test_cli_fetch_rejects_bad_flags(data_dir, capsys, monkeypatch):
    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    assert main(["fetch", "--data-dir", str(data_dir), "--start", "2024-13-01"]) == 2
    assert "--start '2024-13-01'" in capsys.readouterr().err
    assert main(["fetch", "--data-dir", str(data_dir), "--feed", "otc"]) == 2
    assert main(["fetch", "--data-dir", str(data_dir), "--start", "2024-03-01",
                 "--end", "2024-02-01"]) == 2
    monkeypatch.delenv("APCA_API_SECRET_KEY")
    assert main(["fetch", "--data-dir", str(data_dir)]) == 3
    assert "APCA_API_SECRET_KEY" in capsys.readouterr().err
    assert Store(data_dir).current_version() is None


def test_one_reused_old_symbol_gives_each_later_symbol_its_own_span():
    """OLD was CCC's name until 2022-06-01 and, reused, DDD's from 2024-01-02 to 2025-03-03:
    each gets the dividends filed under OLD within its own span only."""
    from aurora.fetch.corporate_actions import as_renamed, empty_actions

    table = pl.concat([empty_actions(), pl.DataFrame({
        "id": ["a", "b", "c"], "action_type": ["cash_dividend"] * 3, "symbol": ["OLD"] * 3,
        "ex_date": [D(2020, 5, 1), D(2023, 5, 1), D(2024, 5, 1)], "cash_rate": [0.1] * 3,
    })], how="diagonal_relaxed")
    spans = [("OLD", "CCC", None, D(2022, 6, 1)), ("OLD", "DDD", D(2024, 1, 2), D(2025, 3, 3))]
    out = as_renamed(table, spans)
    assert out.select("id", "symbol").rows() == [("a@CCC", "CCC"), ("c@DDD", "DDD")]


def test_what_a_reused_ticker_filed_before_the_rename_into_it_is_dropped():
    """META was a Roundhill ETF's ticker until FB took it on 2022-06-09: a dividend filed under
    META before that is not Facebook's (dropped); FB's own, filed under FB and given to META
    (`x@META`), stays, as do META's later actions, the rename, the actions of a symbol
    outside the universe, and a record without an ex-date (the adjustment refuses it by
    name)."""
    from aurora.fetch.corporate_actions import empty_actions, without_earlier_holders

    rows = [("n1", "name_change", "META", "FB", D(2022, 6, 9)),
            ("etf", "cash_dividend", "META", None, D(2021, 12, 20)),  # Roundhill's
            ("fb@META", "cash_dividend", "META", None, D(2021, 3, 1)),  # Facebook's, renamed
            ("fb", "cash_dividend", "FB", None, D(2021, 3, 1)),
            ("late", "cash_dividend", "META", None, D(2024, 3, 1)),
            ("n2", "name_change", "XYZ", "OLD", D(2023, 1, 3)),
            ("xyz", "cash_dividend", "XYZ", None, D(2022, 1, 3)),
            ("undated", "cash_dividend", "META", None, None)]  # kept: refused by name later
    table = pl.concat([empty_actions(), pl.DataFrame(
        rows, schema=["id", "action_type", "symbol", "old_symbol", "ex_date"], orient="row")],
        how="diagonal_relaxed")
    out = without_earlier_holders(table, {"META", "KO"})
    assert out["id"].to_list() == ["n1", "fb@META", "fb", "late", "n2", "xyz", "undated"]
    assert without_earlier_holders(table, {"KO"}).equals(table)


def test_a_200_without_corporate_actions_is_retried_not_read_as_none(clock):
    answers = [httpx.Response(200, json={"message": "maintenance"}),
               httpx.Response(200, json=PAGE2)]
    client = AlpacaBarsClient("http://api.test", KEY, SECRET, limiter=RateLimiter(
        1000, clock=clock.time, sleep=clock.sleep),
        transport=httpx.MockTransport(lambda request: answers.pop(0)))
    table = fetch_corporate_actions(client, ["META", "KO"], D(2020, 1, 1), D(2024, 12, 31))
    assert sorted(table["id"].to_list()) == ["d1", "n1"] and client.stats.retries == 1
