"""Statistical properties of the synthetic market (fixed seed, 130 names x 3 years)."""

from __future__ import annotations

import math

import polars as pl
import pytest

from aurora.adjustments import adjust_bars
from aurora_testbed.synthetic import REVERSAL_WINDOW, SyntheticMarket

from .conftest import with_returns


@pytest.fixture(scope="module")
def returns(market: SyntheticMarket) -> pl.DataFrame:
    adjusted = adjust_bars(market.bars, market.corporate_actions, "all")
    return with_returns(adjusted).drop_nulls("r")


def test_cross_sectional_dispersion_is_material(returns: pl.DataFrame) -> None:
    daily = returns.group_by("date").agg(pl.col("r").std())
    assert daily["r"].median() > 0.005  # type: ignore[operator]
    assert daily["r"].median() < 0.04  # type: ignore[operator]


def test_volume_rises_with_absolute_return(returns: pl.DataFrame) -> None:
    demeaned = returns.select(
        (pl.col("volume").log() - pl.col("volume").log().mean().over("symbol")).alias("lv"),
        (pl.col("r").abs() - pl.col("r").abs().mean().over("symbol")).alias("ar"),
    )
    assert demeaned.select(pl.corr("lv", "ar")).item() > 0.1


def test_returns_have_fat_tails(returns: pl.DataFrame) -> None:
    # Quantile tail ratio (q99 - q01) / (q75 - q25): 3.45 for a normal, about 5 for t(4).
    ratio = returns.group_by("symbol").agg(
        (pl.col("r").quantile(0.99) - pl.col("r").quantile(0.01))
        / (pl.col("r").quantile(0.75) - pl.col("r").quantile(0.25))
    )
    assert ratio["r"].median() > 3.8  # type: ignore[operator]


def test_volatility_clusters(returns: pl.DataFrame) -> None:
    pooled = returns.with_columns(
        a=pl.col("r").abs() - pl.col("r").abs().mean().over("symbol")
    ).with_columns(lag=pl.col("a").shift(1).over("symbol"))
    assert pooled.drop_nulls("lag").select(pl.corr("a", "lag")).item() > 0.03


def test_planted_reversal_is_detectable(returns: pl.DataFrame) -> None:
    h = REVERSAL_WINDOW
    log_close = pl.col("close").log()
    frame = returns.with_columns(
        signal=-(log_close - log_close.shift(h)).over("symbol"),
        future=(log_close.shift(-h) - log_close).over("symbol"),
    ).drop_nulls(["signal", "future"])
    ic = (
        frame.group_by("date")
        .agg(pl.corr("signal", "future", method="spearman").alias("ic"))
        .sort("date")
        .gather_every(h)  # non-overlapping forward windows
    )["ic"]
    t_stat = ic.mean() / ic.std() * math.sqrt(ic.len())  # type: ignore[operator]
    assert 0.02 < ic.mean() < 0.15  # type: ignore[operator]
    assert t_stat > 3
