"""Point in time through the store: the build from a store cut at D equals, before D, the
build from the full store, with 'all'-adjusted prices whose later dividends and splits
restate every earlier price (the way Alpaca serves adjustment=all)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from aurora.adjustments import adjust_bars
from aurora.atomic import atomic_write_parquet
from aurora.config import AuroraConfig
from aurora.features import build_features
from aurora.features.registry import FEATURE_NAMES
from aurora.store import Store, UniverseRecord
from aurora_testbed.synthetic import generate_market

SYMBOLS = ["AAPL", "KO", "XOM", "T", "IBM", "PG", "JPM", "CVX", "MRK", "PFE", "S001", "S002"]
START, CUT, END = dt.date(2018, 1, 2), dt.date(2020, 6, 1), dt.date(2021, 6, 30)


def _store(path, market, before: dt.date | None) -> Store:
    bars, actions = market.bars, market.corporate_actions
    if before is not None:
        bars = bars.filter(pl.col("date") < before)
        actions = actions.filter(pl.col("ex_date") < before)
    store = Store(path)
    universe = UniverseRecord(symbols=tuple(bars["symbol"].unique().sort()), source="test")
    with store.transaction("fetch", base=store.current_version(), universe=universe,
                           params={"adjustment": "all"}) as txn:
        atomic_write_parquet(txn.path("prices.parquet"), adjust_bars(bars, actions, "all"))
        txn.describe("prices.parquet", adjustment="all")
        atomic_write_parquet(txn.path("corporate_actions.parquet"), actions)
        sectors = pl.DataFrame({"symbol": list(market.sectors),
                                "sector": list(market.sectors.values())})
        atomic_write_parquet(txn.path("sector_map.parquet"), sectors)
    return store


def test_features_before_d_do_not_depend_on_later_dividends(tmp_path):
    market = generate_market(SYMBOLS, START, END)
    assert market.corporate_actions.filter(pl.col("ex_date") >= CUT).height > 10
    full = _store(tmp_path / "full", market, None)
    cut = _store(tmp_path / "cut", market, CUT)
    for store in (full, cut):
        build_features(store, AuroraConfig(data_dir=store.root), universe=SYMBOLS)
    a = pl.read_parquet(full.latest / "features.parquet").filter(pl.col("date") < CUT)
    b = pl.read_parquet(cut.latest / "features.parquet")
    assert a.select("date", "symbol").equals(b.select("date", "symbol"))
    worst = {}
    for name in FEATURE_NAMES:
        x, y = a[name].to_numpy(), b[name].to_numpy()
        assert np.array_equal(np.isnan(x), np.isnan(y)), name
        ok = ~np.isnan(x)
        scale = np.abs(y[ok]) + np.std(y[ok]) + 1e-300
        worst[name] = float(np.max(np.abs(x[ok] - y[ok]) / scale, initial=0))
    # Back-adjustment rescales whole segments, so equality holds to float rounding only
    # (relative to each value plus the feature's spread, for features that cross zero).
    assert max(worst.values()) < 1e-6, sorted(worst.items(), key=lambda kv: -kv[1])[:5]
