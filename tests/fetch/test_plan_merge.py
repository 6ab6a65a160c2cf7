"""Batches, checkpoints, incremental planning, restatement detection, merging."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from aurora.errors import UniverseError
from aurora.fetch.batches import (
    BatchRequest,
    Checkpoint,
    clean_checkpoints,
    make_batches,
    normalize_symbols,
    plan_id,
)
from aurora.fetch.incremental import find_restatements, merge_prices, plan_fetch
from aurora.fetch.reconcile import next_slice, read_cursor, write_cursor

D = dt.date


def prices(rows: list[tuple[str, dt.date, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "date": [r[1] for r in rows],
            "symbol": [r[0] for r in rows],
            "open": [r[2] for r in rows],
            "high": [r[2] + 1 for r in rows],
            "low": [r[2] - 1 for r in rows],
            "close": [r[2] for r in rows],
            "volume": [100.0] * len(rows),
            "vwap": [r[2] for r in rows],
            "trade_count": [5] * len(rows),
        },
        schema_overrides={"trade_count": pl.Int64},
    )


# January 2024 sessions: 2,3,4,5,8,9,10,11,12,16,17,18,19,22,...
JAN = [D(2024, 1, d) for d in (2, 3, 4, 5, 8, 9, 10, 11, 12, 16, 17, 18, 19)]


def test_normalize_symbols_maps_dedupes_and_rejects():
    assert normalize_symbols(["aapl", "BRK-B", "AAPL", " msft "]) == ["AAPL", "BRK.B", "MSFT"]
    with pytest.raises(UniverseError, match="path separator"):
        normalize_symbols(["AAPL", "../etc"])


def test_make_batches_of_fifty():
    symbols = [f"S{i:03d}" for i in range(130)]
    batches = make_batches(symbols, D(2024, 1, 2), D(2024, 1, 5), 50)
    assert [len(b.symbols) for b in batches] == [50, 50, 30]
    assert [s for b in batches for s in b.symbols] == symbols
    assert len({b.key for b in batches}) == 3


def test_plan_id_depends_on_everything():
    a = make_batches(["AAA", "BBB"], D(2024, 1, 2), D(2024, 1, 5), 50)
    params = {"adjustment": "all", "feed": "sip"}
    assert plan_id(a, params) == plan_id(list(a), dict(params))
    assert plan_id(a, params) != plan_id(a, {"adjustment": "raw", "feed": "sip"})
    b = make_batches(["AAA", "BBB"], D(2024, 1, 2), D(2024, 1, 8), 50)
    assert plan_id(a, params) != plan_id(b, params)


def test_checkpoint_roundtrip_and_distrust_of_partial_state(tmp_path):
    ck = Checkpoint(tmp_path / "plan")
    req = BatchRequest(("AAA",), D(2024, 1, 2), D(2024, 1, 3))
    frame = prices([("AAA", D(2024, 1, 2), 10.0), ("AAA", D(2024, 1, 3), 11.0)])
    assert ck.load(req) is None
    ck.save(req, frame)
    assert ck.load(req).equals(frame)
    # an index entry whose file does not have the recorded rows is not trusted
    index = json.loads((tmp_path / "plan" / "index.json").read_text())
    index["batches"][req.key]["rows"] = 3
    (tmp_path / "plan" / "index.json").write_text(json.dumps(index))
    assert ck.load(req) is None
    # an orphan Parquet file without an index entry (killed between the two writes)
    other = BatchRequest(("BBB",), D(2024, 1, 2), D(2024, 1, 3))
    frame.write_parquet(tmp_path / "plan" / f"{other.key}.parquet")
    assert ck.load(other) is None
    ck.clear()
    assert not (tmp_path / "plan").exists()


def test_plan_fetch_full_incremental_and_up_to_date():
    stored = prices([("AAA", d, 10.0) for d in JAN[:10]]  # through Jan 16
                    + [("BBB", d, 20.0) for d in JAN])   # through Jan 19
    plan = plan_fetch(stored, ["AAA", "BBB", "CCC"], D(2024, 1, 2), D(2024, 1, 19),
                      batch_size=50, overlap=5)
    assert plan.windows["CCC"] == (D(2024, 1, 2), D(2024, 1, 19), "full")
    # five sessions before Jan 16 is Jan 8
    assert plan.windows["AAA"] == (D(2024, 1, 8), D(2024, 1, 19), "incremental")
    # stored through the end, BBB still has its last five sessions confirmed (from Jan 11)
    assert plan.up_to_date == ["BBB"]
    assert plan.windows["BBB"] == (D(2024, 1, 11), D(2024, 1, 19), "incremental")
    assert sorted((b.purpose, b.symbols) for b in plan.batches) == [
        ("full", ("CCC",)), ("incremental", ("AAA",)), ("incremental", ("BBB",))]
    # a reconciled symbol is re-read over the whole history, past `end` if stored past it
    plan = plan_fetch(stored, ["AAA", "BBB"], D(2024, 1, 2), D(2024, 1, 17), batch_size=50,
                      overlap=5, reconcile=["BBB"], reconcile_from=D(2023, 12, 1))
    assert plan.windows["BBB"] == (D(2023, 12, 1), D(2024, 1, 19), "reconcile")
    assert plan.windows["AAA"] == (D(2024, 1, 8), D(2024, 1, 17), "incremental")
    # stored history that starts after the requested start: everything in full
    plan = plan_fetch(stored, ["AAA", "BBB"], D(2023, 6, 1), D(2024, 1, 19), batch_size=50,
                      overlap=5, stored_from=D(2024, 1, 2))
    assert {w[2] for w in plan.windows.values()} == {"full"}


def _plan(stored: pl.DataFrame):
    return plan_fetch(stored, ["AAA", "BBB"], D(2024, 1, 2), D(2024, 1, 19), batch_size=50,
                      overlap=3)


def test_restatement_detection():
    stored = prices([(s, d, 10.0 + i) for s in ("AAA", "BBB") for i, d in enumerate(JAN[:10])])
    plan = _plan(stored)  # overlap from Jan 10
    fresh = prices([(s, d, 10.0 + i) for s in ("AAA", "BBB") for i, d in enumerate(JAN)])
    assert find_restatements(stored, fresh, plan) == {}
    # a close changed inside the overlap
    changed = fresh.with_columns(
        close=pl.when((pl.col("symbol") == "BBB") & (pl.col("date") == D(2024, 1, 11)))
        .then(pl.col("close") * 1.01).otherwise(pl.col("close")))
    assert find_restatements(stored, changed, plan) == {
        "BBB": "bar values changed on 2024-01-11"}
    # a stored bar is no longer served
    missing = fresh.filter(~((pl.col("symbol") == "AAA") & (pl.col("date") == D(2024, 1, 10))))
    assert find_restatements(stored, missing, plan) == {
        "AAA": "stored bar no longer served on 2024-01-10"}
    # a changed trade_count (a vendor correction) counts too; a tiny float wobble does not
    wobble = fresh.with_columns(open=pl.col("open") * (1 + 1e-12))
    assert find_restatements(stored, wobble, plan) == {}
    tc = fresh.with_columns(trade_count=pl.when(pl.col("symbol") == "AAA").then(6)
                            .otherwise(pl.col("trade_count")))
    assert set(find_restatements(stored, tc, plan)) == {"AAA"}
    # bars before the overlap are not compared (they were not requested)
    early = fresh.filter(pl.col("date") >= D(2024, 1, 10))
    assert find_restatements(stored, early, plan) == {}


def test_merge_prices_fetched_wins_and_replacements():
    stored = prices([("AAA", d, 1.0) for d in JAN[:5]] + [("OLD", JAN[0], 3.0)]
                    + [("BBB", d, 2.0) for d in JAN[:5]])
    fetched = prices([("AAA", d, 9.0) for d in JAN[3:7]])
    refetch = prices([("BBB", d, 7.0) for d in JAN[1:7]])
    merged = merge_prices(stored, [fetched, refetch], keep_symbols=["AAA", "BBB"],
                          replace_symbols=["BBB"])
    assert merged.select("symbol", "date").is_duplicated().sum() == 0
    aaa = merged.filter(pl.col("symbol") == "AAA")["close"].to_list()
    assert aaa == [1.0, 1.0, 1.0, 9.0, 9.0, 9.0, 9.0]
    bbb = merged.filter(pl.col("symbol") == "BBB")
    assert bbb["date"].min() == JAN[1] and set(bbb["close"]) == {7.0}  # JAN[0] dropped: replaced
    assert "OLD" not in merged["symbol"].to_list()
    assert merged.equals(merged.sort("symbol", "date"))


def test_restatements_of_an_up_to_date_symbol_and_of_a_reconciled_one():
    stored = prices([(s, d, 10.0 + i) for s in ("AAA", "BBB") for i, d in enumerate(JAN)])
    plan = plan_fetch(stored, ["AAA", "BBB"], D(2024, 1, 2), D(2024, 1, 19), batch_size=50,
                      overlap=3, reconcile=["BBB"], reconcile_from=D(2024, 1, 2))
    assert plan.windows["AAA"] == (D(2024, 1, 16), D(2024, 1, 19), "incremental")
    assert plan.up_to_date == ["AAA", "BBB"]
    # a correction far before the overlap: only the reconciliation of BBB sees it
    served = stored.with_columns(
        close=pl.when((pl.col("symbol") == "BBB") & (pl.col("date") == D(2024, 1, 3)))
        .then(pl.col("close") * 1.01).otherwise(pl.col("close")))
    assert find_restatements(stored, served, plan) == {}
    assert find_restatements(stored, served, plan, "reconcile") == {
        "BBB": "bar values changed on 2024-01-03"}
    # a source without the last sessions of an up-to-date symbol is noticed
    lacking = served.filter(~((pl.col("symbol") == "AAA") & (pl.col("date") >= D(2024, 1, 18))))
    assert find_restatements(stored, lacking, plan) == {
        "AAA": "stored bar no longer served on 2024-01-18"}


def test_reconciliation_slices_cover_every_symbol_within_the_cycle(tmp_path):
    symbols = [f"S{i:02d}" for i in range(10)]
    after, seen = None, []
    for _ in range(4):  # ceil(10 / 4) = 3 symbols a run: all ten within four runs
        chunk = next_slice(symbols, after, 4)
        assert len(chunk) == 3
        seen += chunk
        after = chunk[-1]
    assert set(seen) == set(symbols) and seen[9:] == ["S09", "S00", "S01"]  # wraps around
    assert next_slice(symbols, None, 0) == [] and next_slice([], None, 5) == []
    assert next_slice(list(reversed(symbols)), "ZZZ", 100) == ["S00"]
    assert read_cursor(tmp_path) is None
    write_cursor(tmp_path, ["S09", "S00"], 4, D(2024, 1, 19))
    assert read_cursor(tmp_path) == "S00"  # the last one in rotation order
    (tmp_path / "fetch-reconcile.json").write_text("{not json")
    assert read_cursor(tmp_path) is None


def test_clean_checkpoints_keeps_only_the_current_plan(tmp_path):
    root = tmp_path / "fetch"
    for name in ("old-plan", "current", "other-day"):
        (root / name).mkdir(parents=True)
        (root / name / "index.json").write_text("{}")
    (root / "note.txt").write_text("not a plan")
    assert clean_checkpoints(root, root / "current") == ["old-plan", "other-day"]
    assert sorted(p.name for p in root.iterdir()) == ["current", "note.txt"]
    assert clean_checkpoints(tmp_path / "missing", tmp_path / "missing" / "x") == []
