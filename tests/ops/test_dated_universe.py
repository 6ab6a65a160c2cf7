"""A dated universe end to end, over real HTTP against the emulator: a member delisted
mid-history keeps its bars in the store, is in the cross-sections while a member and in
none after, and predictions.json omits it after it left; a name that joined later is
ranked, without rows from before it joined."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from aurora.config import load_config
from aurora.ops import pipeline
from aurora.store import Store
from aurora.store.bars import read_prices
from aurora.store.datasets import read_features
from aurora.universe import default_universe, load_universe

emulator = pytest.importorskip("aurora_testbed.emulator")

KEY_ID, SECRET = "PKTESTKEY0003", "planted-SECRET-d8"
START, END = dt.date(2023, 1, 3), dt.date(2024, 12, 31)
NOW = dt.datetime(2025, 1, 2, 12, tzinfo=dt.UTC)
SYMBOLS = default_universe().symbols[:10]
GONE, GONE_LAST = SYMBOLS[4], dt.date(2024, 9, 30)
JOINER, JOINED = SYMBOLS[7], dt.date(2024, 6, 3)
SETTINGS = {
    "AURORA_PREDICT__N_ESTIMATORS": "20", "AURORA_PREDICT__MIN_DATA_IN_LEAF": "20",
    "AURORA_PREDICT__TRAIN_SESSIONS": "250", "AURORA_PREDICT__MIN_TRAIN_SESSIONS": "120",
}


def test_a_member_delisted_mid_history(data_dir, tmp_path, monkeypatch):
    full = emulator.MarketData.synthetic(SYMBOLS, START, END, seed=13)
    delisted = full.bars.filter((pl.col("symbol") != GONE) | (pl.col("date") <= GONE_LAST))
    actions = full.corporate_actions.filter(
        (pl.col("symbol") != GONE) | (pl.col("ex_date") <= GONE_LAST))
    market = emulator.MarketData(delisted, actions)
    members = tmp_path / "members.csv"
    members.write_text("symbol,start,end\n" + "".join(
        f"{s},{JOINED if s == JOINER else START},{GONE_LAST if s == GONE else ''}\n"
        for s in SYMBOLS))
    universe = load_universe(members)
    with emulator.EmulatorServer(market, {KEY_ID: SECRET}, rate_limit_per_minute=10_000) as srv:
        for name, value in {"APCA_API_KEY_ID": KEY_ID, "APCA_API_SECRET_KEY": SECRET,
                            "APCA_API_DATA_URL": srv.url, "APCA_API_BASE_URL": srv.url,
                            "AURORA_DATA_DIR": str(data_dir), **SETTINGS}.items():
            monkeypatch.setenv(name, value)
        result = pipeline.run_pipeline(load_config(), universe=universe, start=START,
                                       end=END, progress=None, now=lambda: NOW)
    store = Store(data_dir)
    assert result.version == store.current_version()
    assert [name for name, ok, _ in result.checks if not ok] == []
    # its bars stay in the store, through its last session
    prices = read_prices(store)
    last = dict(prices.group_by("symbol").agg(pl.col("date").max()).iter_rows())
    assert last == {**dict.fromkeys(SYMBOLS, END), GONE: GONE_LAST}
    assert any(GONE in line and "inactive" in line for line in result.fetch_lines)
    # in the cross-sections while a member, in none after
    features = read_features(store)
    gone = features.filter(pl.col("symbol") == GONE)
    assert gone.height > 0 and gone["date"].max() == GONE_LAST
    assert gone["f_cs_rank_ret"].null_count() < gone.height
    per_day = dict(features.group_by("date").len().iter_rows())
    after = [d for d in per_day if d > GONE_LAST]
    assert after and all(per_day[d] == len(SYMBOLS) - 1 for d in after)
    joiner = features.filter(pl.col("symbol") == JOINER)
    assert joiner["date"].min() == JOINED
    meta = json.loads(store.verified_path("features.meta.json").read_text())
    assert meta["universe"]["rows_outside_membership"] > 0
    # predictions.json omits it after it left, and ranks the joiner
    doc = json.loads(store.verified_path("predictions.json").read_text())
    ranked = {p["symbol"]: p["rank"] for p in doc["predictions"]}
    assert GONE not in ranked and ranked[JOINER] is not None
    assert len(ranked) == len(SYMBOLS) - 1
    assert doc["inputs"]["symbols"] == len(SYMBOLS) - 1
    assert doc["inputs"]["universe_symbols"] == len(SYMBOLS)
    # the manifest records the dates, so a later stage resolves the same membership
    recorded = store.manifest().universe
    assert recorded is not None and recorded.members is not None
    assert {(m.symbol, m.end) for m in recorded.members if m.end} == {(GONE, GONE_LAST)}


def test_fetch_records_the_dates_and_a_plain_build_and_predict_use_them(data_dir, tmp_path,
                                                                        monkeypatch):
    """`aurora fetch --universe members.csv`, then `aurora build` and `aurora predict` with
    no universe: they resolve the fetch's recorded membership, dates included. A member
    only long before the stored window (OLDCO, which the server does not list) is recorded,
    not fetched, and fails nothing."""
    from aurora.cli.main import main

    market = emulator.MarketData.synthetic(SYMBOLS, START, END, seed=13)
    members = tmp_path / "members.csv"
    members.write_text("symbol,start,end\r\n" + "".join(
        f"{s},{JOINED if s == JOINER else START},\r\n" for s in SYMBOLS)
        + "OLDCO,2010-01-04,2012-12-31\r\n")
    with emulator.EmulatorServer(market, {KEY_ID: SECRET}, rate_limit_per_minute=10_000) as srv:
        for name, value in {"APCA_API_KEY_ID": KEY_ID, "APCA_API_SECRET_KEY": SECRET,
                            "APCA_API_DATA_URL": srv.url, "APCA_API_BASE_URL": srv.url,
                            "AURORA_DATA_DIR": str(data_dir), **SETTINGS}.items():
            monkeypatch.setenv(name, value)
        assert main(["fetch", "--universe", str(members), "--start", START.isoformat(),
                     "--end", END.isoformat()]) == 0
        requested = {s for r in srv.request_log if r.path == "/v2/stocks/bars"
                     for s in r.params.get("symbols", "").split(",")}
    assert "OLDCO" not in requested and set(SYMBOLS) <= requested
    store = Store(data_dir)
    recorded = store.manifest().universe
    assert recorded is not None and recorded.members is not None
    assert "OLDCO" in recorded.symbols
    assert main(["build"]) == 0 and main(["predict"]) == 0
    features = read_features(store)
    assert features.filter(pl.col("symbol") == JOINER)["date"].min() == JOINED
    assert "OLDCO" not in features["symbol"].unique().to_list()
    doc = json.loads(store.verified_path("predictions.json").read_text())
    assert {p["symbol"] for p in doc["predictions"]} == set(SYMBOLS)
