"""Per-node column windows: on a tail, each node is computed only over the columns its
readers need, and the emitted cells equal those of the whole history."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import polars as pl
import pytest

from aurora.calendar import sessions_back
from aurora.features import Beta, Market, Mean, Rank, Ref, close, volume
from aurora.features.compute import compute_panel
from aurora.features.engine import Plan, _starts
from aurora.features.incremental import Incremental
from aurora.features.panel import (
    PanelInfo,
    bar_spans,
    extend_spans,
    shares_table,
    spans_from_record,
    spans_record,
)
from aurora.features.registry import MAX_LOOKBACK
from aurora.membership import Membership

from .conftest import SECTORS, assert_features_close, random_fundamentals, random_panel


def test_each_node_starts_its_window_before_its_earliest_reader():
    shared = Mean(close, 5)
    plan = Plan.of({"a": Rank(shared), "b": Ref(shared, 3), "c": Mean(volume, 20)})
    starts = _starts(plan, 30)
    assert starts[Rank(shared).key] == 30
    assert starts[Ref(shared, 3).key] == 27  # a lag of 3 reads 3 columns back
    assert starts[shared.key] == 23  # needed from 27 by Ref, a window of 5 adds 4
    assert starts[close.key] == 23
    assert starts[Mean(volume, 20).key] == 11
    assert _starts(plan, 3)[shared.key] == 0  # never before the panel


def test_a_full_build_starts_only_per_date_nodes_where_they_are_needed():
    """A per-date value reads its own date alone, so a full build starts it at the first
    date a reader needs; every other node covers every column (its running sums too)."""
    ret = close / Ref(close, 1) - 1
    plan = Plan.of({"a": Rank(Mean(close, 5)), "b": Beta(ret, Market(ret), 10)})
    starts = _starts(plan, 30, windowed=False)
    assert starts[Rank(Mean(close, 5)).key] == 30
    assert starts[Mean(close, 5).key] == 0
    assert starts[Market(ret).key] == 0  # read by a series from its first column
    assert starts[Beta(ret, Market(ret), 10).key] == 0


@pytest.mark.parametrize(("workers", "block_cells"), [(1, 300_000), (2, 700)])
def test_a_tail_computes_the_cells_of_the_whole_history(workers, block_cells):
    """The last 12 sessions from a tail of MAX_LOOKBACK + 12 sessions, windowed, equal a
    build over all 420 sessions, with a member leaving inside the tail."""
    prices = random_panel(n_sessions=420, seed=21, missing=0.03)
    fund = random_fundamentals(prices)
    dates = sorted(prices["date"].unique().to_list())
    first_new = dates[-12]
    membership = Membership.from_rows(
        [(s, dt.date(2000, 1, 3), None) for s in SECTORS if s != "DDD"]
        + [("DDD", dt.date(2000, 1, 3), dates[-5])])
    tail = prices.filter(pl.col("date") >= sessions_back(first_new, MAX_LOOKBACK))

    shares = shares_table(fund, prices, None, PanelInfo())  # market caps before the tail

    def build(bars: pl.DataFrame, windowed: bool) -> pl.DataFrame:
        return compute_panel(bars, sectors=SECTORS, fundamentals=fund, membership=membership,
                             workers=workers, block_cells=block_cells, shares=shares,
                             windowed=windowed).features

    full = build(prices, False).filter(pl.col("date") >= first_new)
    part = build(tail, True)
    assert part["date"].min() == first_new
    assert part.select("symbol", "date").equals(full.select("symbol", "date"))
    for name in part.columns[2:]:
        x, y = part[name].to_numpy(), full[name].to_numpy()
        assert np.array_equal(np.isnan(x), np.isnan(y)), name
        np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-14, err_msg=name)


def test_a_full_build_does_not_depend_on_the_sessions_after_a_cell():
    """Without windows a cell is the same, bit for bit, whatever follows it: 560 sessions
    built whole, and cut 40 sessions earlier (then fewer than twice the largest look-back
    of sessions: no size of history may switch windows on)."""
    # no bar missing: a symbol's last bar before the cut is the cut
    prices = random_panel(n_sessions=560, seed=22, ragged=False)
    dates = sorted(prices["date"].unique().to_list())
    cut = prices.filter(pl.col("date") <= dates[-41])
    whole = compute_panel(prices, sectors=SECTORS).features
    early = compute_panel(cut, sectors=SECTORS).features
    assert early.height > 0
    assert whole.filter(pl.col("date") <= dates[-41]).equals(early)


def test_a_tail_keeps_a_symbol_without_a_bar_on_its_first_session():
    """AAA has no bar on the tail's first session: told the whole history's spans, the tail
    still emits AAA's rows and the same values (without them it lost a row and masked the
    long windows of AAA, and so the cross-sections of everyone)."""
    prices = random_panel(n_sessions=700, seed=3)
    dates = sorted(prices["date"].unique().to_list())
    first_new = dates[600]
    tail_start = sessions_back(first_new, MAX_LOOKBACK)
    prices = prices.filter(~((pl.col("symbol") == "AAA") & (pl.col("date") == tail_start)))
    full = compute_panel(prices, sectors=SECTORS).features.filter(pl.col("date") >= first_new)
    tail = compute_panel(prices.filter(pl.col("date") >= tail_start), sectors=SECTORS,
                         windowed=True, spans=bar_spans(prices),
                         since=np.datetime64(first_new)).features
    assert_features_close(full, tail)


def test_bar_spans_whatever_the_row_order():
    prices = random_panel(n_sessions=300, seed=9, missing=0.05)
    expected = prices.group_by("symbol").agg(pl.col("date").min().alias("first"),
                                             pl.col("date").max().alias("last")).sort("symbol")
    assert bar_spans(prices.sort("symbol", "date")).sort("symbol").equals(expected)
    shuffled = prices.sample(fraction=1.0, shuffle=True, seed=2)
    assert bar_spans(shuffled).sort("symbol").equals(expected)
    assert bar_spans(prices.clear()).height == 0


def test_spans_widened_by_later_bars_are_the_whole_history_s():
    """What an incremental build does instead of reading the history again: the spans the
    last build recorded (a round trip through its meta), widened by a tail that overlaps
    them and holds a symbol they did not have."""
    prices = random_panel(n_sessions=300, seed=9, missing=0.05)
    days = prices["date"].unique().sort()
    prices = prices.filter((pl.col("symbol") != "AAA") | (pl.col("date") > days[260]))
    early = prices.filter(pl.col("date") <= days[250])
    recorded = spans_from_record(json.loads(json.dumps(spans_record(bar_spans(early)))))
    assert recorded is not None and recorded.equals(bar_spans(early).sort("symbol"))
    widened = extend_spans(recorded, prices.filter(pl.col("date") >= days[200]))
    assert widened.sort("symbol").equals(bar_spans(prices).sort("symbol"))
    assert spans_from_record(None) is None
    assert spans_from_record({"symbol": ["A"], "first": ["not a date"], "last": [""]}) is None
    assert spans_from_record({"symbol": ["A"], "first": [None], "last": ["2020-01-02"]}) is None


def test_a_tail_starts_where_the_universe_has_bars():
    """No universe symbol has a bar on the tail's first session, a symbol outside the
    universe does: the tail starts at the universe's last bar before it, so the first new
    session keeps its rows (it lost them all when the start came from every symbol)."""
    prices = random_panel(n_sessions=800, seed=7)
    dates = sorted(prices["date"].unique().to_list())
    first_new = dates[700]
    tail_start = sessions_back(first_new, MAX_LOOKBACK)
    universe = [s for s in SECTORS if s != "HHH"]
    prices = prices.filter(~((pl.col("symbol") != "HHH") & (pl.col("date") == tail_start)))
    plan = Incremental("base", pl.DataFrame(), {}, dates[699], first_new, tail_start)
    tail = plan.tail(prices, universe)
    assert tail["date"].min() < tail_start
    full = compute_panel(prices, sectors=SECTORS, universe=universe).features
    part = compute_panel(tail, sectors=SECTORS, universe=universe, windowed=True,
                         spans=bar_spans(prices), since=np.datetime64(first_new)).features
    assert_features_close(full.filter(pl.col("date") >= first_new), part)
