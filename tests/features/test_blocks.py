"""A full build as year blocks (`aurora.features.blocks`): the same rows and counts as a
one-piece build, values to 1e-9 relative."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from aurora.features.blocks import compute_blocks, year_blocks
from aurora.features.compute import compute_panel
from aurora.features.registry import MAX_LOOKBACK
from aurora.membership import Membership

from .conftest import SECTORS, assert_features_close, random_fundamentals, random_panel


def test_year_blocks_cover_each_year_with_its_lookback_tail():
    prices = random_panel(n_sessions=800, seed=5)
    blocks = year_blocks(prices, MAX_LOOKBACK)
    assert [(b.first.year, b.last.year) for b in blocks] == [(y, y) for y in (2020, 2021, 2022,
                                                                              2023)]
    assert blocks[0].first == prices["date"].min() and blocks[-1].last == prices["date"].max()
    later = blocks[2]
    days = sorted(later.prices["date"].unique().to_list())
    assert days.index(later.first) == MAX_LOOKBACK  # exactly the look-back before it
    assert max(d for d in days if d <= later.last) == later.last  # then each next bar
    assert later.first == min(d for d in prices["date"].to_list() if d.year == 2022)


@pytest.mark.parametrize("late_fundamentals", [False, True])
def test_blocks_equal_a_one_piece_build(late_fundamentals):
    """800 sessions (4 calendar years) with missing bars, fundamentals (from the start, or
    only from the second year: turnover falls back before), a member leaving and a symbol
    outside the universe: same rows, same counts, values within 1e-9 relative."""
    prices = random_panel(n_sessions=800, seed=31, missing=0.03)
    fund = random_fundamentals(prices)
    dates = sorted(prices["date"].unique().to_list())
    if late_fundamentals:
        fund = fund.filter(pl.col("as_of") >= dates[300])
    membership = Membership.from_rows(
        [(s, dt.date(2000, 1, 3), None) for s in SECTORS if s != "DDD"]
        + [("DDD", dt.date(2000, 1, 3), dates[500])])
    universe = [s for s in SECTORS if s != "EEE"]
    kwargs = dict(sectors=SECTORS, fundamentals=fund, universe=universe,
                  membership=membership)
    whole = compute_panel(prices, **kwargs)
    seen: list[tuple[str, int, int]] = []
    blocks = compute_blocks(prices, **kwargs,
                            progress=lambda stage, done, n: seen.append((stage, done, n)))
    assert seen == [("blocks", k, 4) for k in range(5)]
    assert_features_close(whole.features, blocks.features)
    assert blocks.turnover_fallback == whole.turnover_fallback
    assert bool(blocks.turnover_fallback) == late_fundamentals
    assert blocks.ignored_symbols == whole.ignored_symbols == ["EEE"]
    assert blocks.outside_membership == whole.outside_membership > 0
    assert (blocks.info.missing_bars, blocks.info.grid_rows) == (
        whole.info.missing_bars, whole.info.grid_rows)
    assert blocks.info.unknown_sector == whole.info.unknown_sector
    assert blocks.info.shares_source == whole.info.shares_source
