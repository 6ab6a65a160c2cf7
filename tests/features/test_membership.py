"""A dated universe in the feature engine: a symbol is in the cross-sections, the market
return and the emitted rows only on its member dates; its own series use all its bars."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from aurora.features.compute import compute_panel
from aurora.features.gates import run_gates
from aurora.features.registry import FEATURE_NAMES
from aurora.membership import Membership

from .conftest import SECTORS, random_panel

OPEN = dt.date(2000, 1, 3)  # a start before any bar: member from the beginning


@pytest.fixture(scope="module")
def prices():
    return random_panel(n_sessions=340, seed=5, ragged=False)


def _dates(prices):
    return sorted(prices["date"].unique().to_list())


def _always(but: dict[str, list[tuple[dt.date, dt.date | None]]]) -> Membership:
    rows = [(s, OPEN, None) for s in SECTORS if s not in but]
    rows += [(s, a, b) for s, spans in but.items() for a, b in spans]
    return Membership.from_rows(rows)


def test_a_member_that_left_is_what_its_bars_cut_at_the_exit_would_give(prices):
    """Leaving at D is the same, to the last bit, as having no bars after D: the market
    return and every cross-section after D are the other members' alone."""
    left = _dates(prices)[300]
    membership = _always({"CCC": [(OPEN, left)]})
    dated = compute_panel(prices, sectors=SECTORS, membership=membership)
    cut = prices.filter((pl.col("symbol") != "CCC") | (pl.col("date") <= left))
    plain = compute_panel(cut, sectors=SECTORS)
    assert dated.features.equals(plain.features)
    ccc = dated.features.filter(pl.col("symbol") == "CCC")
    assert ccc.height > 0 and ccc["date"].max() == left
    after = prices.filter((pl.col("symbol") == "CCC") & (pl.col("date") > left)).height
    assert dated.outside_membership == after > 0


def test_a_member_that_joins_has_rows_from_its_first_member_date_only(prices):
    dates = _dates(prices)
    joined = dates[290]
    membership = _always({"FFF": [(joined, None)]})
    dated = compute_panel(prices, sectors=SECTORS, membership=membership).features
    plain = compute_panel(prices, sectors=SECTORS).features
    fff = dated.filter(pl.col("symbol") == "FFF")
    assert fff["date"].min() == joined
    # its own series (returns, volatility) use its bars from before it joined
    series = ["f_ret_5d", "f_vol_20d", "f_mom_12_1"]
    expected = plain.filter((pl.col("symbol") == "FFF") & (pl.col("date") >= joined))
    assert fff.select(series).equals(expected.select(series))
    # before it joined, the others' ranks are those of a cross-section without it
    others_before = dated.filter((pl.col("symbol") != "FFF") & (pl.col("date") < joined))
    without = compute_panel(prices.filter(pl.col("symbol") != "FFF"), sectors=SECTORS).features
    assert others_before["f_cs_rank_ret"].equals(
        without.filter(pl.col("date") < joined)["f_cs_rank_ret"])
    # after it joined, a cross-section holds every symbol: the ranks differ from `without`
    on = dates[320]
    ranks = dated.filter(pl.col("date") == on).sort("symbol")["f_cs_rank_ret"]
    assert ranks.len() == len(SECTORS) and set(ranks.to_list()) != set(
        without.filter(pl.col("date") == on)["f_cs_rank_ret"].to_list())


def test_a_gap_in_membership_is_no_session_hole_for_the_gates(prices):
    dates = _dates(prices)
    membership = _always({"HHH": [(OPEN, dates[285]), (dates[300], None)]})
    frame = compute_panel(prices, sectors=SECTORS, membership=membership).features
    hhh = frame.filter(pl.col("symbol") == "HHH")["date"].to_list()
    assert dates[286] not in hhh and dates[299] not in hhh and dates[300] in hhh
    last_bar = prices.group_by("symbol").agg(pl.col("date").min().alias("first_date"),
                                             pl.col("date").max().alias("last_date"))
    report = run_gates(frame, universe=list(SECTORS), last_bar=last_bar,
                       membership=membership)
    coverage = {r.name: r for r in report.results}
    assert coverage["session_coverage"].passed, coverage["session_coverage"].message
    assert coverage["symbol_coverage"].passed
    # without the membership the same frame has a hole for HHH
    plain = run_gates(frame, universe=list(SECTORS), last_bar=last_bar)
    sessions_gate = next(r for r in plain.results if r.name == "session_coverage")
    assert not sessions_gate.passed and "HHH" in sessions_gate.message


def test_the_gates_still_catch_a_member_without_rows(prices):
    dates = _dates(prices)
    membership = _always({})
    frame = compute_panel(prices, sectors=SECTORS, membership=membership).features
    frame = frame.filter((pl.col("symbol") != "GGG") | (pl.col("date") < dates[310]))
    last_bar = prices.group_by("symbol").agg(pl.col("date").min().alias("first_date"),
                                             pl.col("date").max().alias("last_date"))
    report = run_gates(frame, universe=list(SECTORS), last_bar=last_bar,
                       membership=membership)
    failed = {r.name: r.message for r in report.failures}
    assert "GGG" in failed["session_coverage"]


def test_every_feature_is_emitted_for_members(prices):
    membership = _always({"AAA": [(OPEN, _dates(prices)[310])]})
    frame = compute_panel(prices, sectors=SECTORS, membership=membership).features
    assert frame.columns == ["date", "symbol", *FEATURE_NAMES]
    assert frame.filter(pl.col("date") == _dates(prices)[-1]).height == len(SECTORS) - 1
