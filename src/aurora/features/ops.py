"""Expression building blocks shared by the feature families.

Time-series helpers act on a frame sorted by (symbol, date) on the full session grid; the
builder evaluates rolling ones per symbol and masks values inside the look-back. Rolling
statistics skip missing bars and are null unless at least `MIN_COVERAGE` of the window is
present (so one missing bar does not blank a 60-session statistic).
"""

from __future__ import annotations

import math

import polars as pl

MIN_COVERAGE = 0.8

C = pl.col("close")
O = pl.col("open")  # noqa: E741
H = pl.col("high")
L = pl.col("low")
V = pl.col("volume")
DV = pl.col("dollar_volume")
# The daily return column f_ret_1d, computed first and reused by the other features.
R = pl.col("f_ret_1d")


def min_obs(window: int) -> int:
    """The fewest non-null observations a rolling window of `window` sessions accepts."""
    return max(1, math.ceil(MIN_COVERAGE * window))


def ret(k: int = 1) -> pl.Expr:
    """Simple close-to-close return over k sessions: close_t / close_{t-k} - 1."""
    return C / C.shift(k) - 1.0


def rmean(x: pl.Expr, window: int) -> pl.Expr:
    return x.rolling_mean(window, min_samples=min_obs(window))


def rstd(x: pl.Expr, window: int) -> pl.Expr:
    """Sample standard deviation (ddof=1) over the window."""
    return x.rolling_std(window, min_samples=min_obs(window), ddof=1)


def rmax(x: pl.Expr, window: int) -> pl.Expr:
    return x.rolling_max(window, min_samples=min_obs(window))


def rmin(x: pl.Expr, window: int) -> pl.Expr:
    return x.rolling_min(window, min_samples=min_obs(window))


def paired(x: pl.Expr, y: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """x and y, each nulled where the other is null, so rolling moments use the same bars."""
    both = x.is_not_null() & y.is_not_null()
    return pl.when(both).then(x), pl.when(both).then(y)


def rcov(x: pl.Expr, y: pl.Expr, window: int) -> pl.Expr:
    """Sample covariance (ddof=1) over the bars where both are present."""
    xp, yp = paired(x, y)
    n = xp.is_not_null().cast(pl.Float64).rolling_sum(window, min_samples=1)
    raw = rmean(xp * yp, window) - rmean(xp, window) * rmean(yp, window)
    return raw * n / (n - 1.0)


def rcorr(x: pl.Expr, y: pl.Expr, window: int) -> pl.Expr:
    """Pearson correlation over the bars where both are present."""
    xp, yp = paired(x, y)
    return rcov(xp, yp, window) / (rstd(xp, window) * rstd(yp, window))


def safe_log(x: pl.Expr) -> pl.Expr:
    """Natural log; null for non-positive input instead of -inf/NaN."""
    return pl.when(x > 0).then(x.log())


def cs_pct_rank(x: pl.Expr, *by: str) -> pl.Expr:
    """Percentile rank within each group: average rank / count of non-null values, in (0, 1].

    Same convention as pandas `rank(pct=True)`; nulls stay null and are not counted.
    """
    keys = by or ("date",)
    return x.rank("average").over(keys) / x.count().over(keys).cast(pl.Float64)


def cs_zscore(x: pl.Expr, *by: str) -> pl.Expr:
    """(x - mean) / std (ddof=1) within each group; null when the std is 0 or undefined."""
    keys = by or ("date",)
    sd = x.std(ddof=1).over(keys)
    return pl.when(sd > 0).then((x - x.mean().over(keys)) / sd)


def cs_demean(x: pl.Expr, *by: str) -> pl.Expr:
    """x minus the equal-weight mean of x within each group (non-null members only)."""
    keys = by or ("date",)
    return x - x.mean().over(keys)
