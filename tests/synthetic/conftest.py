"""A shared synthetic market: the 130-name default universe over three years (~2 s)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from aurora.universe import default_universe
from aurora_testbed.synthetic import SyntheticMarket, generate_market

START, END = dt.date(2018, 1, 1), dt.date(2020, 12, 31)


@pytest.fixture(scope="session")
def market() -> SyntheticMarket:
    return generate_market(default_universe().symbols, START, END)


def with_returns(bars: pl.DataFrame) -> pl.DataFrame:
    """Add r = log close-to-close return between consecutive bars of a symbol."""
    return bars.sort("symbol", "date").with_columns(
        r=pl.col("close").log().diff().over("symbol"),
        gap=(pl.col("open").log() - pl.col("close").log().shift(1)).over("symbol"),
    )
