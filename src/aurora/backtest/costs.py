"""What trading a symbol on a day costs, and the daily market a backtest trades in.

`market_frame` turns bars into one row per (symbol, session) with what a backtest needs,
each value known at that session's close (point in time):
- `ret`: the close-to-close total return of the session (a fraction) from the adjusted
  closes (`aurora.adjusted`: splits and dividends up to each date), null for a symbol's
  first bar or after a missing bar;
- `price`: the raw close (USD per share), to count the shares a trade moves;
- `volatility`: the standard deviation of `ret` over the last `window` sessions (a
  fraction per day; needs 80% of them);
- `adv`: the mean dollar volume (raw close x raw volume, USD) over the last `window`
  sessions;
- `half_spread`: half the bid-ask spread (a fraction of the price) estimated from daily
  highs, lows and closes over the last `window` sessions, at least half a one-cent tick
  (`TICK_USD`: no US stock above 1 USD quotes a tighter spread). `estimator`:
  "abdi_ranaldo" (2017, the default: the close against the mid-ranges of its day and the
  next, the products averaged before the square root, so the estimate's noise does not bias
  it upward) or "corwin_schultz" (2012: two days' high-low ranges, each negative two-day
  estimate set to zero before averaging, which biases liquid stocks upward; on the S&P 500
  sample its median half-spread is 23 bps against 2.7 for Abdi-Ranaldo, docs/backtest.md).
  A cost model with a configured `half_spread_bps` uses that constant instead.

`trade_costs` prices a vector of trades (USD, signed) with the `CostModel`: commission per
share with a minimum per order, half-spread, and market impact by a square-root law,
`impact x volatility x sqrt(|trade| / adv) x |trade|`. A short position also pays a borrow
fee (annual, on its value, accrued every session). Costs are USD, never negative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

TRADING_DAYS = 252
MIN_SHARE_OF_WINDOW = 0.8  # the missing-data rule of the features: 80% of the window
TICK_USD = 0.01  # the quoting increment of US stocks above 1 USD (SEC Rule 612)

SpreadEstimator = Literal["abdi_ranaldo", "corwin_schultz"]


@dataclass(frozen=True)
class CostModel:
    """Cost parameters. `commission_per_share` and `min_commission` in USD; `half_spread_bps`
    None: estimated per symbol and day (Corwin-Schultz), else this constant (basis points);
    `impact`: the square-root law's coefficient (0: no impact); `borrow_bps`: the annual
    borrow fee of a short, in basis points of its value."""

    commission_per_share: float = 0.005
    min_commission: float = 1.0
    half_spread_bps: float | None = None
    impact: float = 1.0
    borrow_bps: float = 50.0

    @classmethod
    def free(cls) -> CostModel:
        """No cost at all: what the gross returns are computed with."""
        return cls(0.0, 0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class TradeCosts:
    """The costs of one session's trades, USD per symbol (arrays aligned with the trades)."""

    commission: np.ndarray
    spread: np.ndarray
    impact: np.ndarray


def trade_costs(trades: np.ndarray, price: np.ndarray, half_spread: np.ndarray,
                volatility: np.ndarray, adv: np.ndarray, model: CostModel) -> TradeCosts:
    """The costs of `trades` (USD, signed; 0: no order) given each symbol's raw price (USD
    per share), estimated half-spread (fraction; the model's `half_spread_bps` instead
    when set), daily volatility (fraction) and average dollar volume (USD). A symbol whose
    price is unknown pays the minimum commission; an unknown half-spread, volatility or
    volume counts as zero cost for that component (`simulate.Market` carries them forward
    from the last known value first)."""
    size = np.abs(trades)
    traded = size > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = np.where(price > 0, size / price, 0.0)
        per_share = np.nan_to_num(shares * model.commission_per_share)
        commission = np.where(traded, np.maximum(per_share, model.min_commission), 0.0)
        if model.half_spread_bps is not None:
            half_spread = np.full(len(size), model.half_spread_bps / 1e4)
        spread = np.nan_to_num(half_spread * size)
        participation = np.where(adv > 0, size / adv, 0.0)
        impact = np.nan_to_num(model.impact * volatility * np.sqrt(participation) * size)
    return TradeCosts(commission, spread, impact)


def borrow_cost(positions: np.ndarray, model: CostModel) -> float:
    """One session's borrow fee (USD) on the short positions (negative values, USD)."""
    short = -positions[positions < 0].sum()
    return float(short * model.borrow_bps / 1e4 / TRADING_DAYS)


def corwin_schultz() -> pl.Expr:
    """The two-day Corwin-Schultz spread estimate (a fraction of the price, negative
    values set to 0) of each row from its high and low and the previous row's of the
    same symbol: an expression over a frame sorted by symbol, date with columns high, low,
    close; null for a symbol's first row. The previous close corrects the day's range for
    an overnight move outside it, as in the paper."""
    prev_close = pl.col("close").shift(1).over("symbol")
    gap_down = pl.max_horizontal(prev_close - pl.col("high"), pl.lit(0.0))
    gap_up = pl.max_horizontal(pl.col("low") - prev_close, pl.lit(0.0))
    high = pl.col("high") + gap_down - gap_up
    low = pl.col("low") + gap_down - gap_up
    prev_high = pl.col("high").shift(1).over("symbol")
    prev_low = pl.col("low").shift(1).over("symbol")
    beta = (high / low).log() ** 2 + (prev_high / prev_low).log() ** 2
    gamma = (pl.max_horizontal(high, prev_high) / pl.min_horizontal(low, prev_low)).log() ** 2
    k = 3 - 2 * math.sqrt(2)
    alpha = ((2 * beta).sqrt() - beta.sqrt()) / k - (gamma / k).sqrt()
    spread = 2 * (alpha.exp() - 1) / (1 + alpha.exp())
    return spread.clip(lower_bound=0.0)


def abdi_ranaldo_squared() -> pl.Expr:
    """The Abdi-Ranaldo (2017) squared-spread term of each row, known at its close:
    4 (c - m)(c - m') with c the previous row's log close, m its mid-range (log high + log
    low) / 2 and m' this row's mid-range (same symbol). It may be negative: only its mean
    over a window estimates the squared spread. An expression over a frame sorted by
    symbol, date with columns high, low, close; null for a symbol's first row."""
    mid = (pl.col("high").log() + pl.col("low").log()) / 2
    prev_close = pl.col("close").log().shift(1).over("symbol")
    return 4 * (prev_close - mid.shift(1).over("symbol")) * (prev_close - mid)


def half_spread(estimator: SpreadEstimator, window: int, least: int) -> pl.Expr:
    """Half the spread estimated over the last `window` rows of each symbol (at least
    `least` of them): see the module docstring. Before the tick floor."""
    if estimator == "corwin_schultz":
        return corwin_schultz().rolling_mean(window, min_samples=least).over("symbol") / 2
    squared = abdi_ranaldo_squared().rolling_mean(window, min_samples=least).over("symbol")
    return squared.clip(lower_bound=0.0).sqrt() / 2  # null stays null: too few rows


def market_frame(adjusted: pl.DataFrame, raw: pl.DataFrame, window: int = 21,
                 estimator: SpreadEstimator = "abdi_ranaldo") -> pl.DataFrame:
    """The daily market (module docstring) from `adjusted` bars (symbol, date, high, low,
    close adjusted point in time, dollar_volume) and `raw` bars (symbol, date, close):
    columns symbol, date, ret, price, volatility, adv, half_spread, sorted by symbol, date.
    Missing volatility, adv and half-spread are filled forward per symbol."""
    least = max(2, math.ceil(window * MIN_SHARE_OF_WINDOW))
    bars = adjusted.select("symbol", "date", "high", "low", "close", "dollar_volume").sort(
        "symbol", "date")
    ret = pl.col("close") / pl.col("close").shift(1).over("symbol") - 1
    out = bars.with_columns(ret=ret).with_columns(
        volatility=pl.col("ret").rolling_std(window, min_samples=least).over("symbol"),
        adv=pl.col("dollar_volume").rolling_mean(window, min_samples=least).over("symbol"),
        half_spread=half_spread(estimator, window, least))
    prices = raw.select("symbol", "date", pl.col("close").alias("price"))
    out = out.join(prices, on=["symbol", "date"], how="left")
    filled = [pl.col(c).fill_nan(None).forward_fill().over("symbol")
              for c in ("volatility", "adv", "half_spread", "price")]
    tick = pl.when(pl.col("price") >= 1).then(TICK_USD / 2 / pl.col("price"))  # Rule 612
    return out.with_columns(filled).with_columns(
        half_spread=pl.when(pl.col("half_spread").is_null()).then(None)
        .otherwise(pl.max_horizontal(pl.col("half_spread"), tick))).select(
        "symbol", "date", "ret", "price", "volatility", "adv",
        pl.col("half_spread").cast(pl.Float64)).sort("symbol", "date")
