"""A cost-aware backtest of out-of-sample scores: gross, net, benchmark and capacity.

`run_backtest(scores, market, settings)`:
1. each score of feature date t becomes a target on its decision date, the next session
   of the market (the close the label starts from), among the symbols with a bar, a
   price, a volatility and a dollar volume that day (`portfolios.target_weights`);
2. the book is simulated twice (`simulate.simulate`): with no cost (gross) and with the
   cost model (net), from `settings.book_usd`;
3. the benchmark is the equal-weight universe bought at the same first close: each later
   session, the mean return of the symbols with a return (and members that session, for
   a dated universe), no cost;
4. `performance.summary` of the three series, the costs by kind, the turnover, and the
   capacity (`performance.capacity`: the book at which net falls to half of gross).
The result is deterministic: the same scores and market give the same JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from aurora.backtest import performance
from aurora.backtest.costs import TRADING_DAYS, CostModel
from aurora.backtest.portfolios import Construction, Weighting, target_weights
from aurora.backtest.simulate import Market, Mode, simulate
from aurora.errors import DataValidationError


@dataclass(frozen=True)
class Settings:
    """What to backtest: the portfolio (`construction`, `weighting`, `top_k`,
    `quantiles`), how long a position is held (`holding` sessions) and how (`mode`), the
    book size in USD and the cost model."""

    construction: Construction = "top_quantile"
    weighting: Weighting = "equal"
    top_k: int = 20
    quantiles: int = 5
    holding: int = 5
    mode: Mode = "overlapping"
    book_usd: float = 10_000_000.0
    costs: CostModel = field(default_factory=CostModel)


@dataclass(frozen=True)
class BacktestResult:
    """`summary`: JSON-ready statistics; `daily`: one row per session (date, gross, net and
    benchmark returns, net equity, drawdown, traded USD and each cost in USD)."""

    summary: dict[str, Any]
    daily: pl.DataFrame

    def to_json(self) -> dict[str, Any]:
        """The summary plus the daily series (the content of backtest.json)."""
        daily = self.daily.with_columns(pl.col("date").cast(pl.String))
        return {**self.summary, "daily": daily.to_dicts()}

    def summary_lines(self) -> list[str]:
        """A short table a person reads at a glance (no printing here)."""
        s = self.summary

        def pct(value: float | None) -> str:
            return "n/a" if value is None else f"{value:+.1%}"

        def num(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.2f}"

        lines = [f"backtest {s['settings']['construction']} ({s['settings']['weighting']}), "
                 f"held {s['settings']['holding']} sessions ({s['settings']['mode']}), "
                 f"book {s['settings']['book_usd']:,.0f} USD, {s['period'][0]} .. "
                 f"{s['period'][1]} ({s['net']['sessions']} sessions)",
                 f"{'':>10} {'return/yr':>10} {'vol/yr':>8} {'sharpe':>7} {'sortino':>8} "
                 f"{'max dd':>8} {'hit':>6}"]
        for name in ("gross", "net", "benchmark"):
            m = s[name]
            lines.append(f"{name:>10} {pct(m['annual_return']):>10} "
                         f"{pct(m['annual_volatility']):>8} {num(m['sharpe']):>7} "
                         f"{num(m['sortino']):>8} {pct(m['max_drawdown']):>8} "
                         f"{pct(m['hit_rate']):>6}")
        c = s["costs"]["annual_bps"]
        lines.append(f"costs per year: {sum(c.values()):.0f} bps of the book (commission "
                     f"{c['commission']:.0f}, spread {c['spread']:.0f}, impact "
                     f"{c['impact']:.0f}, borrow {c['borrow']:.0f}); turnover "
                     f"{s['turnover']['daily']:.1%} of the book a day")
        cap = s["capacity"]
        lines.append("capacity: " + (f"about {cap['book']:,.0f} USD (net return half the "
                                     "gross)" if cap["book"] else str(cap["reason"])))
        return lines


def decision_targets(scores: pl.DataFrame, market: Market, settings: Settings) -> np.ndarray:
    """Sessions x symbols target weights (NaN rows: no target) from `scores` (date = the
    feature date, symbol, score). DataValidationError when a score's feature date is not
    a session of the market."""
    index = {d: i for i, d in enumerate(market.days)}
    unknown = set(scores.get_column("date").unique().to_list()) - set(index)
    if unknown:
        raise DataValidationError(f"scores dated {min(unknown)} (and {len(unknown) - 1} more "
                                  "dates): not a session of the stored prices")
    grid = np.full((len(market.days), len(market.symbols)), np.nan)
    columns = {s: j for j, s in enumerate(market.symbols)}
    known = scores.filter(pl.col("symbol").is_in(list(columns)))
    rows = known.select(
        (pl.col("date").replace_strict(index, return_dtype=pl.Int64) + 1).alias("i"),
        pl.col("symbol").replace_strict(columns, return_dtype=pl.Int64).alias("j"),
        pl.col("score").cast(pl.Float64).fill_null(np.nan))
    rows = rows.filter(pl.col("i") < len(market.days))
    grid[rows["i"].to_numpy(), rows["j"].to_numpy()] = rows["score"].to_numpy()
    grid[~market.tradable()] = np.nan
    targets = np.full_like(grid, np.nan)
    decided = np.unique(rows["i"].to_numpy())
    for day in decided:
        targets[day] = target_weights(grid[day], settings.construction, settings.weighting,
                                      k=settings.top_k, quantiles=settings.quantiles)
    return targets


def run_backtest(scores: pl.DataFrame, market: Market, settings: Settings) -> BacktestResult:
    """The backtest of the module docstring. DataValidationError when no decision date has
    enough tradable names for the portfolio."""
    targets = decision_targets(scores, market, settings)
    has = ~np.all(np.isnan(targets), axis=1) & (np.nansum(np.abs(targets), axis=1) > 0)
    if not has.any():
        raise DataValidationError(
            f"no decision date has enough tradable scored names for {settings.construction}"
            f" (top_k {settings.top_k}, quantiles {settings.quantiles})")
    targets[~has] = np.nan

    def book(model: CostModel, size: float) -> pl.DataFrame:
        return simulate(market, targets, holding=settings.holding, mode=settings.mode,
                        model=model, book=size)

    gross = book(CostModel.free(), settings.book_usd)
    net = book(settings.costs, settings.book_usd)
    start = market.days.index(gross["date"][0])
    window = market.ret[start:start + gross.height]
    if market.member is not None:  # a dated universe: its members of each session
        window = np.where(market.member[start:start + gross.height], window, np.nan)
    known = (~np.isnan(window)).sum(axis=1)
    bench = np.where(known > 0, np.nansum(window, axis=1) / np.maximum(known, 1), 0.0)
    bench[0] = 0.0  # bought at the first close, as the book is
    gross_ret, net_ret = gross["ret"].to_numpy(), net["ret"].to_numpy()
    equity = net["equity"].to_numpy()
    spent = {kind: float(net[kind].sum()) for kind in ("commission", "spread", "impact",
                                                      "borrow")}
    mean_equity = float(np.mean(equity))
    years = len(net_ret) / TRADING_DAYS
    cap = performance.capacity(lambda size: float(book(settings.costs, size)["ret"].mean()),
                               float(np.mean(gross_ret)), settings.book_usd)
    summary = {
        "settings": {**{k: v for k, v in settings.__dict__.items() if k != "costs"},
                     "costs": settings.costs.__dict__},
        "period": [str(gross["date"][0]), str(gross["date"][-1])],
        "gross": performance.summary(gross_ret), "net": performance.summary(net_ret),
        "benchmark": performance.summary(bench),
        "costs": {"usd": spent, "annual_bps": {k: v / mean_equity / years * 1e4
                                               for k, v in spent.items()}},
        "turnover": {"daily": float(np.mean(net["traded"].to_numpy() / equity)),
                     "annual": float(np.mean(net["traded"].to_numpy() / equity))
                     * TRADING_DAYS},
        "capacity": cap,
        "missing_returns": int(net["missing_returns"].sum()),
    }
    daily = pl.DataFrame({
        "date": gross["date"], "gross": gross_ret, "net": net_ret, "benchmark": bench,
        "equity": equity, "drawdown": performance.drawdown(net_ret),
        "traded": net["traded"], **{k: net[k] for k in spent}})
    return BacktestResult(summary, daily)
