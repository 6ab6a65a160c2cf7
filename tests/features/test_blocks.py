"""A full build as year blocks (`aurora.features.blocks`, run out of core by
`aurora.features.outofcore`): the same rows and counts as a one-piece build, values to 1e-9
relative."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from aurora.features.blocks import year_blocks
from aurora.features.compute import compute_panel
from aurora.features.exchange import Exchange
from aurora.features.outofcore import OutOfCore, compute_out_of_core, scan_history
from aurora.features.registry import MAX_LOOKBACK
from aurora.membership import Membership
from aurora.schemas import sorted_by_key

from .conftest import SECTORS, assert_features_close, random_fundamentals, random_panel


def test_blocks_divide_a_year():
    prices = random_panel(n_sessions=300, seed=5)
    quarters = year_blocks(prices, MAX_LOOKBACK, months=3)
    assert [(b.first.month, b.last.month) for b in quarters[:4]] == [(1, 3), (4, 6), (7, 9),
                                                                     (10, 12)]
    with pytest.raises(ValueError, match="must divide a year"):
        year_blocks(prices, MAX_LOOKBACK, months=5)


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


def compute_blocks(root: Path, prices: pl.DataFrame, **options: Any
                   ) -> tuple[pl.DataFrame, OutOfCore]:
    """The out-of-core computation of `prices` (stored as a build finds them: sorted by
    symbol, then date) in this process: the rows of its parts, and what it returned."""
    path = root / "prices.parquet"
    prices.sort("symbol", "date").write_parquet(path)
    history = scan_history([path], Exchange.open(root / "scratch"), None,
                           options.get("fundamentals"), options.get("universe"))
    done = compute_out_of_core(history, root / "local", **options)
    parts = [pl.read_parquet(p) for p, _ in done.local_parts().values()]
    return sorted_by_key(pl.concat(parts)), done


@pytest.mark.parametrize(("late_fundamentals", "months"), [(False, 12), (True, 12), (False, 3)])
def test_blocks_equal_a_one_piece_build(tmp_path, late_fundamentals, months):
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
    features, blocks = compute_blocks(
        tmp_path, prices, **kwargs, months=months,
        progress=lambda stage, done, n: seen.append((stage, done, n)))
    assert seen == [("blocks", k, 4) for k in range(5)]  # one task per year, 2020 .. 2023
    assert_features_close(whole.features, features)
    assert blocks.turnover_fallback() == whole.turnover_fallback
    assert bool(whole.turnover_fallback) == late_fundamentals
    assert blocks.history.ignored == whole.ignored_symbols == ["EEE"]
    assert sum(r.outside_membership for r in blocks.results) == whole.outside_membership > 0
    info = blocks.info()
    assert (info.missing_bars, info.grid_rows) == (whole.info.missing_bars,
                                                   whole.info.grid_rows)
    assert info.unknown_sector == whole.info.unknown_sector
    assert info.shares_source == whole.info.shares_source


def _drop(prices: pl.DataFrame, symbol: str | None, lo: dt.date, hi: dt.date) -> pl.DataFrame:
    """`prices` without the bars of `symbol` (None: every symbol) dated lo .. hi."""
    inside = pl.col("date").is_between(lo, hi)
    return prices.filter(~(inside & (pl.col("symbol") == symbol)) if symbol else ~inside)


@pytest.mark.parametrize("case", ["seed2", "gap", "year_end", "year_start", "tail_start",
                                  "suspension"])
def test_blocks_keep_rows_where_bars_are_missing_at_their_edges(tmp_path, case):
    """A symbol whose bars stop for a year and a half across a year boundary, or for two
    and a half years (a block without any of its bars); no symbol with
    a bar on the last sessions of a year, or on the first session of one; a symbol without
    a bar on the first session of a block's tail: the one-piece rows, counts and values."""
    prices = random_panel(n_sessions=1004 if case == "suspension" else 800,
                          seed={"seed2": 2, "suspension": 5}.get(case, 31),
                          missing=0.03 if case == "seed2" else 0.0)
    days = sorted(prices["date"].unique().to_list())
    year_2022 = [d for d in days if d.year == 2022]
    prices = {
        "seed2": prices,
        "gap": _drop(prices, "BBB", dt.date(2020, 10, 1), dt.date(2022, 2, 28)),
        # no bar of BBB in 2022's block at all, its look-back included
        "suspension": _drop(prices, "BBB", dt.date(2020, 6, 1), dt.date(2023, 1, 5)),
        "year_end": _drop(prices, None, dt.date(2021, 12, 30), dt.date(2021, 12, 31)),
        "year_start": _drop(prices, None, year_2022[0], year_2022[0]),
        "tail_start": _drop(prices, "AAA", days[days.index(year_2022[0]) - MAX_LOOKBACK],
                            days[days.index(year_2022[0]) - MAX_LOOKBACK]),
    }[case]
    whole = compute_panel(prices, sectors=SECTORS)
    features, blocks = compute_blocks(tmp_path, prices, sectors=SECTORS)
    assert features.height > 3000  # most of 4 years x 8 symbols after the warm-up
    assert_features_close(whole.features, features)
    assert blocks.turnover_fallback() == whole.turnover_fallback
