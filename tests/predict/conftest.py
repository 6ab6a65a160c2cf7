"""Helpers for the predict tests: small synthetic price panels and simple features.

The panels are built here, not by the build stage, so these tests depend only on the
predict package. `planted_prices` plants a short-term idiosyncratic reversal: each day's
return gives back `kappa` times the mean idiosyncratic shock of the previous `window`
days, so a past 5-day return predicts the next few days' returns with a negative sign.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from aurora import calendar
from aurora.atomic import atomic_write_parquet
from aurora.config import AuroraConfig, PredictConfig
from aurora.store import Store, UniverseRecord


def planted_prices(
    n_symbols: int = 40,
    start: dt.date = dt.date(2020, 1, 2),
    n_sessions: int = 420,
    *,
    kappa: float = 0.18,
    window: int = 5,
    seed: int = 11,
) -> pl.DataFrame:
    """A prices-schema panel (one row per symbol and NYSE session) with a planted reversal."""
    days = calendar.sessions(start, start + dt.timedelta(days=n_sessions * 2))[:n_sessions]
    rng = np.random.default_rng(seed)
    market = rng.normal(0.0003, 0.01, n_sessions)
    eps = rng.normal(0.0, 0.015, (n_symbols, n_sessions + window))
    past = np.stack([eps[:, window - k : window - k + n_sessions] for k in range(1, window + 1)])
    idio = eps[:, window:] - kappa * past.mean(axis=0)
    close = 50.0 * np.exp(np.cumsum(market[None, :] + idio, axis=1))
    symbols = [f"S{i:03d}" for i in range(n_symbols)]
    frame = pl.DataFrame({
        "date": np.tile(np.array(days, dtype="datetime64[D]"), n_symbols),
        "symbol": np.repeat(symbols, n_sessions),
        "close": close.ravel(),
    }).with_columns(pl.col("date").cast(pl.Date))
    return frame.with_columns(
        open=pl.col("close"), high=pl.col("close") * 1.01, low=pl.col("close") * 0.99,
        volume=pl.lit(1e6), vwap=pl.col("close"), trade_count=pl.lit(100, dtype=pl.Int64),
    ).select("date", "symbol", "open", "high", "low", "close", "volume", "vwap",
             "trade_count").sort("symbol", "date")


def simple_features(prices: pl.DataFrame) -> pl.DataFrame:
    """1/5/20-session returns and 20-session volatility, each using closes up to t only."""
    c = pl.col("close")
    r1 = c / c.shift(1) - 1
    return (
        prices.sort("symbol", "date")
        .with_columns(r1.over("symbol").alias("_r1"))
        .with_columns(
            f_ret_1=pl.col("_r1"),
            f_ret_5=(c / c.shift(5) - 1).over("symbol"),
            f_ret_20=(c / c.shift(20) - 1).over("symbol"),
            f_vol_20=pl.col("_r1").rolling_std(20).over("symbol"),
        )
        .select("date", "symbol", "f_ret_1", "f_ret_5", "f_ret_20", "f_vol_20")
        .sort("date", "symbol")
    )


def small_config(data_dir: Path | None = None, **predict: object) -> AuroraConfig:
    """A configuration sized for tests: small windows, few trees, and the tree model alone at
    horizon 5 (the planted reversal's window; the simple features hold no factor)."""
    base = {"train_sessions": 150, "min_train_sessions": 100, "test_sessions": 40,
            "n_estimators": 60, "min_data_in_leaf": 50, "num_leaves": 7, "embargo_sessions": 2,
            "horizon": 5, "factor_weight": 0.0}
    base.update(predict)
    return AuroraConfig(data_dir=data_dir or Path("data"),
                        predict=PredictConfig(**base))  # type: ignore[arg-type]


def publish(store: Store, **frames: pl.DataFrame) -> None:
    """Write frames (name -> frame) into a new store version (the prices' symbols recorded
    as its universe, as a fetch does)."""
    prices = frames.get("prices")
    universe = (UniverseRecord(symbols=tuple(prices["symbol"].unique().sort()), source="test")
                if prices is not None else None)
    with store.transaction("test", base=store.current_version(), universe=universe) as txn:
        for name, frame in frames.items():
            atomic_write_parquet(txn.path(f"{name}.parquet"), frame)


@pytest.fixture(scope="session")
def planted():
    """(prices, features) of the default planted panel."""
    prices = planted_prices()
    return prices, simple_features(prices)


@pytest.fixture(scope="session")
def helpers():
    """The helper functions of this module, for tests that need custom panels."""
    return _Helpers


class _Helpers:
    planted_prices = staticmethod(planted_prices)
    simple_features = staticmethod(simple_features)
    small_config = staticmethod(small_config)
    publish = staticmethod(publish)
