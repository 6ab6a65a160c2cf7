"""The daily book of a backtest: tranches of capital that trade at the close.

The algorithm, over the sessions of the market (`Market.days`), in order:
1. Every position earns the session's return (close to close): a position of p USD
   becomes p x (1 + ret). A held symbol without a bar that session earns 0 (counted in
   `missing_returns`). Short positions pay the session's borrow fee.
2. At the close, the tranches due trade to the session's target (`targets[day]`, weights
   of the tranche's capital: `aurora.backtest.portfolios`), paying commission, half-spread
   and impact on every order (`aurora.backtest.costs`). A tranche due on a session without
   a target keeps its positions; a held symbol without a bar that session keeps its
   position (it cannot trade), and the target is sized on the rest of the capital.

The book's capital is split into tranches: `overlapping` mode has `holding` tranches, one
of them rebalanced every session (1/h of the book each day, each position held h
sessions); `periodic` mode has one tranche, rebalanced every `holding` sessions. The first
tranche trades on the first session with a target; the simulation ends `holding` sessions
after the last one (or at the last session of the market). A tranche's equity is its cash
plus its positions; cash earns nothing (returns are in excess of a zero rate).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from aurora.backtest.costs import CostModel, borrow_cost, trade_costs

Mode = Literal["overlapping", "periodic"]


@dataclass(frozen=True)
class Market:
    """Sessions x symbols arrays of the market (`costs.market_frame`): `bar` (the symbol
    has a bar that session), `ret` (fraction, NaN without a bar), and what a trade costs,
    carried forward over sessions without a bar (a position is closed at its last known
    terms), NaN before the first known value: `price` (USD per share), `volatility`
    (fraction per day), `adv` (USD), `half_spread` (fraction)."""

    days: list
    symbols: list[str]
    bar: np.ndarray
    ret: np.ndarray
    price: np.ndarray
    volatility: np.ndarray
    adv: np.ndarray
    half_spread: np.ndarray
    member: np.ndarray | None = None  # in the universe that session (None: always)

    @classmethod
    def from_frame(cls, frame: pl.DataFrame) -> Market:
        """The arrays of a `market_frame` (one row per symbol and session with a bar; an
        optional Boolean column `member`: in a dated universe that session)."""
        days = frame.get_column("date").unique().sort().to_list()
        symbols = frame.get_column("symbol").unique().sort().to_list()
        bar = ~np.isnan(_pivot(frame.with_columns(bar=pl.lit(1.0)), "bar", days, symbols))
        carried = {name: _carry_forward(_pivot(frame, name, days, symbols))
                   for name in ("price", "volatility", "adv", "half_spread")}
        member = (_pivot(frame.with_columns(pl.col("member").cast(pl.Float64)), "member",
                         days, symbols) == 1.0 if "member" in frame.columns else None)
        return cls(days, symbols, bar, _pivot(frame, "ret", days, symbols), **carried,
                   member=member)

    def tradable(self) -> np.ndarray:
        """Where a new position may be opened: a bar that session, and its price,
        volatility and dollar volume known."""
        return (self.bar & ~np.isnan(self.price) & ~np.isnan(self.volatility)
                & ~np.isnan(self.adv))


def _carry_forward(grid: np.ndarray) -> np.ndarray:
    """Each NaN replaced by the last known value above it in its column."""
    rows = np.where(~np.isnan(grid), np.arange(grid.shape[0])[:, None], 0)
    np.maximum.accumulate(rows, axis=0, out=rows)
    out = grid[rows, np.arange(grid.shape[1])]
    return out


def _pivot(frame: pl.DataFrame, column: str, days: list, symbols: list[str]) -> np.ndarray:
    day_index = {d: i for i, d in enumerate(days)}
    symbol_index = {s: j for j, s in enumerate(symbols)}
    out = np.full((len(days), len(symbols)), np.nan)
    rows = frame.select(
        pl.col("date").replace_strict(day_index, return_dtype=pl.Int64).alias("i"),
        pl.col("symbol").replace_strict(symbol_index, return_dtype=pl.Int64).alias("j"),
        pl.col(column).cast(pl.Float64).fill_null(np.nan))
    out[rows["i"].to_numpy(), rows["j"].to_numpy()] = rows[column].to_numpy()
    return out


DAILY_COLUMNS = ("equity", "ret", "traded", "commission", "spread", "impact", "borrow",
                 "long", "short", "names", "missing_returns")


def simulate(market: Market, targets: np.ndarray, *, holding: int, mode: Mode,
             model: CostModel, book: float) -> pl.DataFrame:
    """The daily book (module docstring) for `targets` (sessions x symbols weights; a row
    of NaN: no target that session) starting with `book` USD. One row per session from the
    first target to the end: date, equity (USD, after the close's trades), ret (the
    session's return of the whole book, a fraction, costs included), traded (USD, buys
    plus sells), commission, spread, impact, borrow (USD), long and short (USD exposure,
    short as a positive number), names (symbols held) and missing_returns (held symbols
    without a bar). Empty when no session has a target."""
    if holding < 1:
        raise ValueError(f"holding must be >= 1 session, got {holding}")
    has_target = ~np.all(np.isnan(targets), axis=1)
    if not has_target.any():
        return pl.DataFrame(schema={"date": pl.Date, **dict.fromkeys(DAILY_COLUMNS,
                                                                      pl.Float64)})
    first = int(np.argmax(has_target))
    last = int(np.flatnonzero(has_target)[-1])
    end = min(len(market.days) - 1, last + holding)
    slots = holding if mode == "overlapping" else 1
    positions = np.zeros((slots, len(market.symbols)))
    cash = np.full(slots, book / slots)
    rows = []
    equity_before = book
    for day in range(first, end + 1):
        ret = market.ret[day]
        missing = int(np.count_nonzero(np.any(positions != 0, axis=0) & np.isnan(ret)))
        fees = np.array([borrow_cost(p, model) for p in positions])  # held over the session
        positions *= 1.0 + np.nan_to_num(ret)
        cash -= fees
        borrow = float(fees.sum())
        costs = np.zeros(3)
        traded = 0.0
        due = (day - first) % holding
        if day <= last and has_target[day] and (mode == "overlapping" or due == 0):
            slot = due if mode == "overlapping" else 0
            # a tranche whose costs took all its capital is ruined: it only sells
            capital = max(cash[slot] + positions[slot].sum(), 0.0)
            # a held symbol without a bar today cannot trade: it stays as it is, and the
            # rest of the tranche's capital goes to the target
            stuck = ~market.bar[day] & (positions[slot] != 0)
            weights = np.where(stuck, 0.0, np.nan_to_num(targets[day]))
            wanted = (capital - positions[slot][stuck].sum()) * weights
            wanted[stuck] = positions[slot][stuck]
            trades = wanted - positions[slot]
            paid = trade_costs(trades, market.price[day], market.half_spread[day],
                               market.volatility[day], market.adv[day], model)
            costs = np.array([paid.commission.sum(), paid.spread.sum(), paid.impact.sum()])
            cash[slot] -= trades.sum() + costs.sum()
            positions[slot] = wanted
            traded = float(np.abs(trades).sum())
        book_positions = positions.sum(axis=0)
        equity = float(cash.sum() + book_positions.sum())
        session_ret = equity / equity_before - 1.0 if equity_before > 0 else -1.0
        rows.append((market.days[day], equity, session_ret, traded,
                     *costs, borrow, float(book_positions[book_positions > 0].sum()),
                     float(-book_positions[book_positions < 0].sum()),
                     int(np.count_nonzero(book_positions)), missing))
        equity_before = equity
    return pl.DataFrame(rows, schema={"date": pl.Date, **dict.fromkeys(DAILY_COLUMNS[:-2],
                                                                       pl.Float64),
                                      "names": pl.Int64, "missing_returns": pl.Int64},
                        orient="row")
