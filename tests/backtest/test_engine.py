"""The backtest's pieces on tiny hand-built inputs with known answers."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest

from aurora.backtest import performance
from aurora.backtest.costs import (
    CostModel,
    abdi_ranaldo_squared,
    borrow_cost,
    corwin_schultz,
    market_frame,
    trade_costs,
)
from aurora.backtest.engine import Settings, run_backtest
from aurora.backtest.portfolios import target_weights
from aurora.backtest.simulate import Market, simulate
from aurora.errors import DataValidationError

DAYS = [dt.date(2024, 1, d) for d in (2, 3, 4, 5, 8, 9, 10, 11)]


def market(ret: list[list[float]], *, price: float = 50.0, vol: float = 0.02,
           adv: float = 1e6, half_spread: float = 0.001) -> Market:
    grid = np.array(ret, dtype=float)
    days, symbols = grid.shape
    full = np.full((days, symbols), 1.0)
    return Market(DAYS[:days], [f"S{j}" for j in range(symbols)], ~np.isnan(grid), grid,
                  price * full, vol * full, adv * full, half_spread * full)


# -- portfolios ---------------------------------------------------------------------------
def test_top_k_and_quantiles_pick_the_best_scores():
    scores = np.array([0.1, 0.9, np.nan, 0.5, -0.3, 0.7])
    assert target_weights(scores, "top_k", "equal", k=2).tolist() == [0, 0.5, 0, 0, 0, 0.5]
    # five scored names, five buckets: one name a bucket
    assert target_weights(scores, "top_quantile", "equal", quantiles=5).tolist() == [
        0, 1, 0, 0, 0, 0]
    long_short = target_weights(scores, "long_short", "equal", quantiles=2)
    assert long_short.tolist() == [-0.5, 0.5, 0, 0, -0.5, 0.5]
    assert long_short.sum() == 0 and np.abs(long_short).sum() == 2


def test_score_weighting_ranks_within_each_leg():
    scores = np.array([3.0, 1.0, 2.0, 10.0, -5.0, -1.0])
    w = target_weights(scores, "long_short", "score", quantiles=2)
    # long leg 10 > 3 > 2: weights 3/6, 2/6, 1/6; short leg -5 < -1 < 1: -3/6, -2/6, -1/6
    assert w.tolist() == pytest.approx([2 / 6, -1 / 6, 1 / 6, 3 / 6, -3 / 6, -2 / 6])


def test_too_few_scored_names_hold_nothing():
    assert not target_weights(np.array([1.0, np.nan]), "top_k", "equal", k=2).any()
    assert not target_weights(np.array([1.0, 2.0]), "top_quantile", "equal",
                              quantiles=5).any()


# -- costs --------------------------------------------------------------------------------
def test_trade_costs_with_known_numbers():
    model = CostModel(commission_per_share=0.005, min_commission=1.0, impact=1.0)
    trades = np.array([10_000.0, -100_000.0, 0.0])
    paid = trade_costs(trades, np.full(3, 50.0), np.full(3, 0.001), np.full(3, 0.02),
                       np.full(3, 1e6), model)
    # 200 shares x 0.005 = 1.00 (the minimum); 2,000 shares = 10.00; no order: 0
    assert paid.commission.tolist() == pytest.approx([1.0, 10.0, 0.0])
    assert paid.spread.tolist() == pytest.approx([10.0, 100.0, 0.0])
    # 1 x 0.02 x sqrt(1%) x 10,000 = 20; x sqrt(10%) x 100,000 = 632.46
    assert paid.impact.tolist() == pytest.approx([20.0, 0.02 * math.sqrt(0.1) * 1e5, 0.0])
    assert borrow_cost(np.array([1e6, -2e6]), CostModel(borrow_bps=252.0)) == pytest.approx(
        200.0)


def test_corwin_schultz_from_two_days_of_ranges():
    bars = pl.DataFrame({"symbol": ["A"] * 3, "high": [101.0, 101.0, 140.0],
                         "low": [99.0, 99.0, 130.0], "close": [100.0, 100.0, 135.0]})
    got = bars.select(corwin_schultz().alias("s"))["s"].to_list()
    beta = 2 * math.log(101 / 99) ** 2
    gamma = math.log(101 / 99) ** 2
    k = 3 - 2 * math.sqrt(2)
    alpha = (math.sqrt(2 * beta) - math.sqrt(beta)) / k - math.sqrt(gamma / k)
    assert got[0] is None
    assert got[1] == pytest.approx(2 * (math.exp(alpha) - 1) / (1 + math.exp(alpha)))
    assert 0 < got[1] < 0.02
    assert got[2] == 0.0  # the gap up is taken out of the range: no negative spread left


def test_abdi_ranaldo_averages_before_the_square_root_and_floors_at_half_a_tick():
    # c_{t-1} = log 100; mid-ranges log(sqrt(101 x 99)) on both days: a product
    # 4 (c - m)^2 > 0 each day, so the estimate is |c - m| x 2 / 2 = |c - m|
    n = 5
    bars = pl.DataFrame({"symbol": ["A"] * n, "high": [101.0] * n, "low": [97.0] * n,
                         "close": [100.0] * n})
    got = bars.select(abdi_ranaldo_squared().alias("s"))["s"].to_list()
    gap = math.log(100) - (math.log(101) + math.log(97)) / 2
    assert got[0] is None and got[1:] == pytest.approx([4 * gap * gap] * (n - 1))
    # in the market frame: sqrt of the mean, halved; and the floor of half a cent
    d = DAYS[:n]
    adjusted = bars.with_columns(date=pl.Series(d), dollar_volume=pl.lit(1e6))
    frame = market_frame(adjusted, adjusted.select("symbol", "date", "close"), window=2)
    assert frame["half_spread"][2] == pytest.approx(abs(gap))
    tight = adjusted.with_columns(high=pl.lit(100.0), low=pl.lit(100.0))  # zero estimate
    floor = market_frame(tight, tight.select("symbol", "date", "close"), window=2)
    assert floor["half_spread"][2] == pytest.approx(0.005 / 100)  # 0.5 bp at 100 USD
    assert floor["half_spread"][0] is None  # nothing known yet: no floor invented
    cs = market_frame(adjusted, adjusted.select("symbol", "date", "close"), window=2,
                      estimator="corwin_schultz")
    assert cs["half_spread"][2] != frame["half_spread"][2]


# -- the book -----------------------------------------------------------------------------
def test_a_periodic_book_compounds_the_held_returns():
    m = market([[0.0, 0.0], [0.10, -0.5], [0.10, 0.0], [-0.2, 0.0], [0.0, 0.0]])
    targets = np.full((5, 2), np.nan)
    targets[0] = [1.0, 0.0]
    targets[2] = [0.0, 1.0]
    daily = simulate(m, targets, holding=2, mode="periodic", model=CostModel.free(),
                     book=1000.0)
    # bought S0 at day 0's close: +10% and +10%, then S1 from day 2's close: 0% after
    assert daily["equity"].to_list() == pytest.approx([1000, 1100, 1210, 1210, 1210])
    assert daily["traded"].to_list() == pytest.approx([1000, 0, 2420, 0, 0])
    assert daily["ret"].to_list() == pytest.approx([0, 0.1, 0.1, 0, 0])


def test_overlapping_tranches_each_hold_their_days_target():
    m = market([[0.0, 0.0], [0.10, 0.0], [0.0, 0.20], [0.0, 0.0], [0.0, 0.0]])
    targets = np.full((5, 2), np.nan)
    targets[0] = [1.0, 0.0]
    targets[1] = [0.0, 1.0]
    daily = simulate(m, targets, holding=2, mode="overlapping", model=CostModel.free(),
                     book=1000.0)
    # tranche 0 (500) buys S0 on day 0: 550 on day 1; tranche 1 (500) buys S1 on day 1:
    # 600 on day 2; day 2 tranche 0 has no target and keeps S0 (flat)
    assert daily["equity"].to_list() == pytest.approx([1000, 1050, 1150, 1150])
    assert daily["names"].to_list() == [1, 2, 2, 2]


def test_costs_and_borrow_come_out_of_the_net_book():
    m = market([[0.0, 0.0], [0.0, 0.0]], adv=1e12)
    targets = np.full((2, 2), np.nan)
    targets[0] = [1.0, -1.0]
    model = CostModel(commission_per_share=0.01, min_commission=0.0, half_spread_bps=None,
                      impact=0.0, borrow_bps=252 * 100)
    daily = simulate(m, targets, holding=1, mode="periodic", model=model, book=1000.0)
    # 2,000 USD traded at 50: 40 shares x 0.01 = 0.40; spread 10 bps x 2,000 = 2.00
    assert daily["commission"][0] == pytest.approx(0.40)
    assert daily["spread"][0] == pytest.approx(2.0)
    assert daily["equity"][0] == pytest.approx(1000 - 2.40)
    # next session: the 1,000 USD short (the costs came out of cash) pays 1% for the day
    assert daily["borrow"][1] == pytest.approx(10.0)
    assert daily["equity"][1] == pytest.approx(1000 - 2.40 - 10.0)


def test_a_missing_bar_earns_nothing_and_is_counted():
    m = market([[0.0], [np.nan], [0.1]])
    targets = np.full((3, 1), np.nan)
    targets[0] = [1.0]
    daily = simulate(m, targets, holding=3, mode="periodic", model=CostModel.free(),
                     book=100.0)
    assert daily["equity"].to_list() == pytest.approx([100, 100, 110])
    assert daily["missing_returns"].to_list() == [0, 1, 0]


# -- performance --------------------------------------------------------------------------
def test_performance_statistics_with_known_answers():
    flat = np.full(252, 0.001)
    assert performance.annual_return(flat) == pytest.approx(1.001 ** 252 - 1)
    assert performance.sharpe(flat) is None  # no dispersion
    r = np.array([0.1, -0.5, 0.2, 0.0])
    assert performance.max_drawdown(r) == pytest.approx(-0.5)
    assert performance.drawdown(r).tolist() == pytest.approx([0, -0.5, -0.4, -0.4])
    assert performance.hit_rate(r) == 0.5
    assert performance.sortino(r) == pytest.approx(
        np.mean(r) / math.sqrt(0.25 / 4) * math.sqrt(252))
    assert performance.annual_volatility(r) == pytest.approx(np.std(r, ddof=1) * math.sqrt(252))


def test_capacity_finds_where_net_is_half_of_gross():
    gross, c = 0.001, 1e-7
    found = performance.capacity(lambda book: gross - c * math.sqrt(book), gross, 1e6)
    assert found["book"] == pytest.approx((gross / 2 / c) ** 2, rel=0.02)
    # the configured book is already too big: searched below it
    below = performance.capacity(lambda book: gross - c * math.sqrt(book), gross, 1e9)
    assert below["book"] == pytest.approx((gross / 2 / c) ** 2, rel=0.02)
    assert performance.capacity(lambda b: -1.0, -0.1, 1e6)["book"] is None
    assert "even at 10,000 USD" in performance.capacity(lambda b: 0.0, 0.1, 1e6)["reason"]


# -- end to end ---------------------------------------------------------------------------
def _scored_market(seed: int = 3) -> tuple[pl.DataFrame, Market]:
    """20 symbols x 8 sessions; each score is the symbol's next-session return, so the
    top bucket must beat the equal-weight universe before costs."""
    rng = np.random.default_rng(seed)
    ret = rng.normal(0, 0.02, (len(DAYS), 20))
    m = market(ret.tolist())
    scores = pl.DataFrame([(DAYS[i], f"S{j}", float(ret[i + 2, j]))
                           for i in range(len(DAYS) - 2) for j in range(20)],
                          schema={"date": pl.Date, "symbol": pl.String, "score": pl.Float64},
                          orient="row")
    return scores, m


def test_a_perfect_score_beats_the_benchmark_gross_and_pays_its_costs():
    scores, m = _scored_market()
    settings = Settings(construction="top_quantile", holding=1, mode="periodic",
                        quantiles=4, book_usd=1e6)
    result = run_backtest(scores, m, settings)
    s = result.summary
    daily = result.daily
    assert (daily["gross"] >= daily["benchmark"] - 1e-12).all()
    assert s["gross"]["annual_return"] > s["benchmark"]["annual_return"]
    assert s["net"]["annual_return"] < s["gross"]["annual_return"]
    assert all(v > 0 for k, v in s["costs"]["usd"].items() if k != "borrow")
    assert s["costs"]["usd"]["borrow"] == 0.0  # long only
    assert s["period"] == [str(DAYS[1]), str(DAYS[-1])]
    assert result.to_json() == run_backtest(scores, m, settings).to_json()  # deterministic
    lines = result.summary_lines()
    assert lines[0].startswith("backtest top_quantile (equal), held 1 sessions (periodic)")
    assert any(line.strip().startswith("net") for line in lines)


def test_scores_on_unknown_dates_are_refused():
    scores, m = _scored_market()
    bad = scores.with_columns(date=pl.lit(dt.date(2023, 12, 31)))
    with pytest.raises(DataValidationError, match=r"scores dated 2023-12-31 .*not a session"):
        run_backtest(bad, m, Settings())


def test_the_market_frame_is_point_in_time_and_carries_costs_forward():
    d = DAYS[:4]
    adjusted = pl.DataFrame({
        "symbol": ["A"] * 4 + ["B"] * 3, "date": [*d, d[0], d[1], d[3]],
        "high": [11.0, 12.0, 12.0, 13.0, 21.0, 21.0, 21.0],
        "low": [9.0, 10.0, 10.0, 11.0, 19.0, 19.0, 19.0],
        "close": [10.0, 11.0, 11.0, 12.1, 20.0, 20.0, 22.0],
        "dollar_volume": [100.0, 200.0, 300.0, 400.0, 50.0, 50.0, 50.0]})
    raw = adjusted.select("symbol", "date", pl.col("close") * 2)  # before a 2:1 split
    frame = market_frame(adjusted, raw, window=2)
    a = frame.filter(pl.col("symbol") == "A")
    assert a["ret"].to_list() == pytest.approx([None, 0.1, 0.0, 0.1], nan_ok=True)
    assert a["price"].to_list() == [20.0, 22.0, 22.0, 24.2]
    assert a["adv"].to_list() == [None, 150.0, 250.0, 350.0]
    assert a["volatility"][2] == pytest.approx(np.std([0.1, 0.0], ddof=1))
    m = Market.from_frame(frame)
    assert m.days == d and m.symbols == ["A", "B"]
    assert m.bar[:, 1].tolist() == [True, True, False, True]
    # B has no bar on day 2: no return, not tradable, its costs carried from day 1
    assert np.isnan(m.ret[2, 1]) and not m.tradable()[2, 1]
    assert m.adv[2, 1] == 50.0 and m.price[2, 1] == 40.0
    assert m.ret[3, 1] == pytest.approx(0.1)  # the return over the gap, from the last close
    assert not m.tradable()[0].any()  # nothing known yet on the first day


def test_a_held_symbol_without_a_bar_cannot_be_sold_that_day():
    m = market([[0.0, 0.0], [np.nan, 0.0], [-0.5, 0.0], [0.0, 0.0]])
    targets = np.full((4, 2), np.nan)
    targets[0] = [1.0, 0.0]
    targets[1] = [0.0, 1.0]
    targets[2] = [0.0, 1.0]
    daily = simulate(m, targets, holding=1, mode="periodic", model=CostModel.free(),
                     book=100.0)
    # day 1: S0 has no bar, so it is kept (not sold at a carried price); day 2 it earns
    # its -50% before it can be sold
    assert daily["equity"].to_list() == pytest.approx([100, 100, 50, 50])
    assert daily["traded"].to_list() == pytest.approx([100, 0, 100, 0])


def test_a_book_its_costs_ruin_stays_finite_and_counts_as_lost():
    """At a book many times the market's volume, the square-root impact exceeds the capital:
    the tranche is ruined (it only sells), no value overflows, and every later session is
    a total loss for the capacity search."""
    m = market([[0.0, 0.0]] * 4, adv=1.0, vol=0.5)
    targets = np.full((4, 2), np.nan)
    targets[0] = targets[2] = [1.0, 0.0]
    with np.errstate(all="raise"):
        daily = simulate(m, targets, holding=2, mode="periodic", model=CostModel(), book=1e12)
    assert np.isfinite(daily["equity"].to_numpy()).all()
    assert daily["equity"][0] < 0 and daily["ret"][1:].to_list() == [-1.0, -1.0, -1.0]
