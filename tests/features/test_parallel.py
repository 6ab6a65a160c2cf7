"""Worker threads and block sizes: the same cells, bit for bit, as one thread."""

from __future__ import annotations

import time

import numpy as np
import polars as pl
import pytest

from aurora.features.compute import compute_panel
from aurora.features.parallel import map_blocks
from aurora.features.registry import REGISTRY

from .conftest import SECTORS, random_fundamentals, random_panel


def test_workers_and_blocking_do_not_change_any_cell():
    prices = random_panel(missing=0.05, seed=11)
    fund = random_fundamentals(prices)
    ref = compute_panel(prices, sectors=SECTORS, fundamentals=fund, workers=1)
    # 800 cells per block: 2-symbol series blocks and 100-date cross blocks on 2 threads
    par = compute_panel(prices, sectors=SECTORS, fundamentals=fund, workers=2, block_cells=800)
    assert ref.features.height > 0
    assert par.features.equals(ref.features)
    assert par.turnover_fallback == ref.turnover_fallback


@pytest.mark.parametrize("windowed", [False, True])
def test_the_thread_count_alone_cuts_the_symbols_and_changes_no_cell(windowed):
    """With the default block size a small panel is one block of symbols on one thread, and
    ceil(symbols / workers) a block on more: every cell equal, bit for bit, full or
    windowed (the tail's and the lookahead proof's evaluation)."""
    prices = random_panel(missing=0.05, seed=12)
    one = compute_panel(prices, sectors=SECTORS, workers=1, windowed=windowed).features
    for workers in (2, 3, 64):
        many = compute_panel(prices, sectors=SECTORS, workers=workers, windowed=windowed)
        assert many.features.equals(one), workers


@pytest.mark.parametrize("workers", [1, 3])
def test_map_blocks_runs_every_block_once_and_reports_progress(workers):
    out = np.zeros(7)
    seen: list[int] = []
    map_blocks(lambda i: out.__setitem__(i, out[i] + i + 1), range(7), workers, seen.append)
    np.testing.assert_array_equal(out, np.arange(1.0, 8.0))
    assert seen == list(range(1, 8))


def test_map_blocks_cancels_the_blocks_not_started_after_an_error():
    started: list[int] = []

    def fn(i: int) -> None:
        started.append(i)
        if i == 0:  # the caller waits on it first
            raise ValueError("boom")
        time.sleep(0.05)

    with pytest.raises(ValueError, match="boom"):
        map_blocks(fn, range(40), 2)
    assert len(started) < 40


@pytest.mark.parametrize("workers", [1, 2])
def test_symbol_without_emitted_rows_inside_a_block(workers):
    """A short-lived symbol (no row past the warm-up) between long ones: every other
    symbol's own-bar features are the ones computed without it."""
    prices = random_panel(seed=13)
    short = prices.filter(pl.col("symbol") == "BBB").head(100)
    with_short = pl.concat([prices.filter(pl.col("symbol") != "BBB"), short]).sort(
        "symbol", "date")
    without = prices.filter(pl.col("symbol") != "BBB")
    own_bars = ["date", "symbol", *(s.name for s in REGISTRY if all(
        n.kind not in ("cross", "market", "custom") for n in s.expr.walk()))]
    assert len(own_bars) == 2 + 25
    a = compute_panel(with_short, sectors=SECTORS, workers=workers, block_cells=1100).features
    b = compute_panel(without, sectors=SECTORS, workers=workers, block_cells=1100).features
    assert "BBB" not in a["symbol"].to_list()
    assert a.select(own_bars).equals(b.select(own_bars))


def test_map_blocks_keeps_the_items_order_and_raises_the_first_error():
    assert map_blocks(lambda x: x * x, list(range(9)), 3) == [x * x for x in range(9)]
    assert map_blocks(lambda x: -x, [4], 2) == [-4]

    def fn(x: int) -> int:
        if x in (3, 6):
            raise ValueError(f"item {x}")
        return x

    with pytest.raises(ValueError, match="item 3"):
        map_blocks(fn, list(range(8)), 2)
