"""Point in time through the store: raw bars and corporate actions are the truth, adjusted
on read. The build from a store cut at D equals, before D and bit for bit, the build from
the full store, though dividends and splits after D are in the full one."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from aurora.atomic import atomic_write_parquet
from aurora.config import AuroraConfig, PredictConfig
from aurora.features import build_features
from aurora.features.registry import FEATURE_NAMES
from aurora.predict import predict
from aurora.store import Store, UniverseRecord
from aurora.store.datasets import read_features
from aurora_testbed.synthetic import generate_market

SYMBOLS = ["AAPL", "KO", "XOM", "T", "IBM", "PG", "JPM", "CVX", "MRK", "PFE", "BLK", "LLY", "S001"]
START, CUT, END = dt.date(2018, 1, 2), dt.date(2020, 6, 1), dt.date(2021, 6, 30)


def raw_store(path, market, before: dt.date | None) -> Store:
    """A store as a fetch leaves it: raw bars and the actions up to its last day."""
    bars, actions = market.bars, market.corporate_actions
    if before is not None:
        bars = bars.filter(pl.col("date") < before)
        actions = actions.filter(pl.col("ex_date") < before)
    store = Store(path)
    universe = UniverseRecord(symbols=tuple(bars["symbol"].unique().sort()), source="test")
    with store.transaction("fetch", base=store.current_version(), universe=universe,
                           params={"adjustment": "raw"}) as txn:
        atomic_write_parquet(txn.path("prices.parquet"), bars)
        txn.describe("prices.parquet", adjustment="raw")
        atomic_write_parquet(txn.path("corporate_actions.parquet"), actions)
        sectors = pl.DataFrame({"symbol": list(market.sectors),
                                "sector": list(market.sectors.values())})
        atomic_write_parquet(txn.path("sector_map.parquet"), sectors)
    return store


def test_features_before_d_do_not_depend_on_later_actions(tmp_path):
    market = generate_market(SYMBOLS, START, END)
    later = market.corporate_actions.filter(pl.col("ex_date") >= CUT)
    assert later.filter(pl.col("action_type") == "cash_dividend").height > 10
    assert later.filter(pl.col("action_type").str.ends_with("split")).height >= 1
    full = raw_store(tmp_path / "full", market, None)
    cut = raw_store(tmp_path / "cut", market, CUT)
    for store in (full, cut):
        build_features(store, AuroraConfig(data_dir=store.root), universe=SYMBOLS)
    a = read_features(full).filter(pl.col("date") < CUT)
    b = read_features(cut)
    assert a.select("date", "symbol").equals(b.select("date", "symbol"))
    differing = [name for name in FEATURE_NAMES if not a[name].equals(b[name])]
    assert differing == []  # exact: nothing later than a date reaches its values


def test_features_before_t_ignore_perturbed_later_bars_and_a_later_dividend(tmp_path):
    """The perturbation test through the store: every raw bar after T moved at random and a
    dividend added after T leave every feature value before T unchanged, exactly."""
    market = generate_market(SYMBOLS, START, END)
    base = raw_store(tmp_path / "base", market, None)
    rng = np.random.default_rng(11)
    bars = market.bars
    later = pl.col("date") >= CUT
    noise = pl.Series(rng.uniform(0.8, 1.25, bars.height))
    moved = bars.with_columns([pl.when(later).then(pl.col(c) * noise).otherwise(pl.col(c))
                               .alias(c) for c in ("open", "high", "low", "close", "vwap")])
    moved = moved.with_columns(pl.max_horizontal("open", "high", "close").alias("high"),
                               pl.min_horizontal("open", "low", "close").alias("low"))
    extra = market.corporate_actions.head(1).with_columns(
        pl.lit("extra-dividend").alias("id"), pl.lit("cash_dividend").alias("action_type"),
        pl.lit("AAPL").alias("symbol"), pl.lit(dt.date(2020, 9, 1)).alias("ex_date"),
        pl.lit(dt.date(2020, 9, 1)).alias("process_date"), pl.lit(None, pl.Float64)
        .alias("old_rate"), pl.lit(None, pl.Float64).alias("new_rate"),
        pl.lit(1.5).alias("cash_rate"))
    perturbed = raw_store(tmp_path / "perturbed", _Market(
        moved, pl.concat([market.corporate_actions, extra]), market.sectors), None)
    for store in (base, perturbed):
        build_features(store, AuroraConfig(data_dir=store.root), universe=SYMBOLS,
                       lookahead=False)
    a = read_features(base).filter(pl.col("date") < CUT)
    b = read_features(perturbed).filter(pl.col("date") < CUT)
    assert a.height > 1000 and a.select("date", "symbol").equals(b.select("date", "symbol"))
    assert [name for name in FEATURE_NAMES if not a[name].equals(b[name])] == []


class _Market:
    """The parts of a SyntheticMarket `raw_store` reads."""

    def __init__(self, bars: pl.DataFrame, actions: pl.DataFrame, sectors: dict) -> None:
        self.bars, self.corporate_actions, self.sectors = bars, actions, sectors


def test_the_same_decision_date_gives_the_same_predictions_a_year_later(tmp_path):
    """A store fetched to the day before the decision and one fetched a year further (with
    dividends and a split in between) rank the decision date identically."""
    market = generate_market(SYMBOLS, START, END)
    later = market.corporate_actions.filter(pl.col("ex_date") >= CUT)
    assert later.filter(pl.col("action_type").str.contains("split")).height >= 1
    config = AuroraConfig(predict=PredictConfig(
        train_sessions=250, min_train_sessions=120, test_sessions=63, n_estimators=30,
        min_data_in_leaf=50, num_leaves=7))
    scores = []
    for name, before in (("then", CUT), ("year_later", None)):
        store = raw_store(tmp_path / name, market, before)
        settings = config.model_copy(update={"data_dir": store.root})
        build_features(store, settings, universe=SYMBOLS, lookahead=False)
        result = predict(store, settings, decision_date=CUT, universe=SYMBOLS)
        scores.append(result.scores.select("symbol", "score").sort("symbol"))
    assert scores[0]["symbol"].equals(scores[1]["symbol"])
    gap = (scores[0]["score"] - scores[1]["score"]).abs().max()
    assert gap is not None and gap <= 1e-9
