"""Performance of a daily return series: short pure functions, in the alphalens style.

Returns are daily fractions, one per session; annualisation uses 252 sessions a year and a
zero risk-free rate. A series with fewer than two sessions, or without dispersion where a
ratio needs it, gives None for that statistic.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from aurora.backtest.costs import TRADING_DAYS

_FLAT = 1e-12  # a standard deviation below this is rounding, not dispersion


def annual_return(returns: np.ndarray) -> float | None:
    """The compound annual growth rate of the equity the returns make."""
    if len(returns) == 0:
        return None
    growth = float(np.prod(1.0 + returns))
    if growth <= 0:
        return -1.0
    return growth ** (TRADING_DAYS / len(returns)) - 1.0


def annual_volatility(returns: np.ndarray) -> float | None:
    """The standard deviation of the daily returns (sample, ddof 1) x sqrt(252)."""
    if len(returns) < 2:
        return None
    return float(np.std(returns, ddof=1) * math.sqrt(TRADING_DAYS))


def sharpe(returns: np.ndarray) -> float | None:
    """Mean over standard deviation of the daily returns, x sqrt(252)."""
    if len(returns) < 2:
        return None
    std = float(np.std(returns, ddof=1))
    return float(np.mean(returns)) / std * math.sqrt(TRADING_DAYS) if std > _FLAT else None


def sortino(returns: np.ndarray) -> float | None:
    """Mean daily return over the downside deviation (root mean square of the negative
    returns, zeros counted for the others), x sqrt(252)."""
    if len(returns) < 2:
        return None
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    return (float(np.mean(returns)) / downside * math.sqrt(TRADING_DAYS) if downside > _FLAT
            else None)


def drawdown(returns: np.ndarray) -> np.ndarray:
    """The drawdown of each session: equity over its running peak, minus 1 (<= 0)."""
    equity = np.cumprod(1.0 + returns)
    return equity / np.maximum.accumulate(np.maximum(equity, 1.0)) - 1.0


def max_drawdown(returns: np.ndarray) -> float | None:
    """The deepest drawdown (a negative fraction; 0 when equity never fell)."""
    return float(drawdown(returns).min()) if len(returns) else None


def hit_rate(returns: np.ndarray) -> float | None:
    """The share of sessions with a positive return."""
    return float(np.mean(returns > 0)) if len(returns) else None


def summary(returns: np.ndarray) -> dict[str, float | None]:
    """Every statistic above, by name (JSON-ready)."""
    return {"annual_return": annual_return(returns),
            "annual_volatility": annual_volatility(returns),
            "sharpe": sharpe(returns), "sortino": sortino(returns),
            "max_drawdown": max_drawdown(returns), "hit_rate": hit_rate(returns),
            "sessions": len(returns)}


def capacity(net_mean: Callable[[float], float], gross_mean: float, book: float, *,
             low: float = 1e4, high: float = 1e12, steps: int = 30) -> dict[str, Any]:
    """The book size (USD) at which the mean net daily return falls to half the gross one.

    `net_mean(size)` runs the backtest with a book of that size. Impact grows with size,
    so the net return falls as the book grows; the spread does not shrink with it. The
    size is bisected on a log scale (at most `steps` runs, to 1%) between `book` and `high`
    when `book` nets at least half the gross, else between `low` and `book`. None with a
    `reason` when the gross return is not positive or when even `low` nets less than half
    (costs that do not shrink with size take the return); `high` when even that nets more.
    """
    if gross_mean <= 0:
        return {"book": None, "reason": "the gross return is not positive"}
    half = gross_mean / 2
    runs = 0

    def enough(size: float) -> bool:
        nonlocal runs
        runs += 1
        return net_mean(size) >= half

    if enough(book):
        if enough(high):
            return {"book": high, "reason": f"still above half at {high:,.0f} USD",
                    "runs": runs}
        lo, hi = math.log(book), math.log(high)
    elif enough(low):
        lo, hi = math.log(low), math.log(book)
    else:
        return {"book": None, "reason": f"below half the gross return even at {low:,.0f} "
                "USD: the spread and commissions alone take it", "runs": runs}
    while runs < steps and hi - lo > 0.01:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if enough(math.exp(mid)) else (lo, mid)
    return {"book": math.exp(lo), "reason": None, "runs": runs}
