"""Factor metrics in the alphalens style: short, pure, one group-by-date each.

Inputs are long frames with a `date` column, a `symbol` column, a factor column (the score)
and a label column (the forward return, a fraction). Rows where either is null or NaN are
ignored. Nothing here prints or reads files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

MIN_NAMES = 3


def _clean(frame: pl.DataFrame, factor: str, label: str) -> pl.DataFrame:
    return frame.with_columns(pl.col(factor).fill_nan(None), pl.col(label).fill_nan(None)) \
        .drop_nulls([factor, label])


def information_coefficient(
    frame: pl.DataFrame, factor: str = "score", label: str = "label", *,
    method: str = "pearson", min_names: int = MIN_NAMES,
) -> pl.DataFrame:
    """Per-date correlation between factor and label across symbols.

    `method`: "pearson" (IC) or "spearman" (rank IC, average ranks for ties). Returns
    columns date, ic (Float64, null for a date with fewer than `min_names` pairs or no
    dispersion), n (pairs). Sorted by date.
    """
    if method not in ("pearson", "spearman"):
        raise ValueError(f"unknown method {method!r}")
    clean = _clean(frame, factor, label)
    if method == "spearman":
        clean = clean.with_columns(
            pl.col(factor).rank("average").over("date").cast(pl.Float64),
            pl.col(label).rank("average").over("date").cast(pl.Float64),
        )
    x, y = pl.col(factor), pl.col(label)
    cov = ((x - x.mean()) * (y - y.mean())).sum()
    den = ((x - x.mean()) ** 2).sum().sqrt() * ((y - y.mean()) ** 2).sum().sqrt()
    return (
        clean.group_by("date")
        .agg(
            ic=pl.when((pl.len() >= min_names) & (den > 0)).then(cov / den),
            n=pl.len().cast(pl.Int64),
        )
        .sort("date")
    )


def newey_west_tstat(values: Sequence[float] | np.ndarray, lag: int) -> float:
    """t-statistic of the mean of a series with Newey-West (Bartlett) standard errors.

    `lag` is the number of autocovariances kept: with overlapping h-session labels,
    neighbouring daily ICs share h - 1 sessions, so lag = h - 1. lag 0 is the plain
    t-statistic (population variance). NaNs are dropped; NaN when undefined.
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    n = x.size
    if n < 2:
        return math.nan
    d = x - x.mean()
    long_run = float(d @ d) / n
    for j in range(1, min(lag, n - 1) + 1):
        long_run += 2.0 * (1.0 - j / (lag + 1)) * float(d[j:] @ d[:-j]) / n
    if long_run <= 0:
        return math.nan
    return float(x.mean() / math.sqrt(long_run / n))


def series_summary(values: Sequence[float] | np.ndarray, lag: int) -> dict[str, Any]:
    """mean, std (ddof 1), ir (mean / std, per period, not annualised), t (Newey-West with
    `lag`), n of a series, NaNs dropped. Undefined values are None (JSON null)."""
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    mean = float(x.mean()) if x.size else math.nan
    std = float(x.std(ddof=1)) if x.size > 1 else math.nan
    ir = mean / std if std and not math.isnan(std) else math.nan
    out = {"mean": mean, "std": std, "ir": ir, "t": newey_west_tstat(x, lag), "n": int(x.size)}
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in out.items()}


def assign_quantiles(frame: pl.DataFrame, quantiles: int, factor: str = "score") -> pl.DataFrame:
    """Add `quantile` (Int64, 1 = lowest factor, `quantiles` = highest) per date.

    Rows are ranked within the date by (factor, symbol), so ties are broken by symbol and
    the buckets hold equal counts (+-1): bucket = floor((rank - 1) * quantiles / n) + 1.
    Rows with a null factor are dropped from the result.
    """
    clean = frame.with_columns(pl.col(factor).fill_nan(None)).drop_nulls([factor])
    clean = clean.sort("date", factor, "symbol")
    pos = pl.int_range(pl.len()).over("date")
    return clean.with_columns(
        quantile=(pos * quantiles // pl.len().over("date") + 1).cast(pl.Int64)
    )


def quantile_daily_returns(frame: pl.DataFrame, label: str = "label") -> pl.DataFrame:
    """Mean label per (date, quantile) of a frame from `assign_quantiles`."""
    return (
        frame.with_columns(pl.col(label).fill_nan(None))
        .drop_nulls([label])
        .group_by("date", "quantile")
        .agg(mean_return=pl.col(label).mean())
        .sort("date", "quantile")
    )


def mean_return_by_quantile(daily: pl.DataFrame) -> pl.DataFrame:
    """Average over dates of `quantile_daily_returns`: columns quantile, mean_return, dates."""
    return (
        daily.group_by("quantile")
        .agg(mean_return=pl.col("mean_return").mean(), dates=pl.len().cast(pl.Int64))
        .sort("quantile")
    )


def spread_series(daily: pl.DataFrame, quantiles: int) -> pl.DataFrame:
    """Per-date top-minus-bottom quantile mean return: columns date, spread."""
    top = daily.filter(pl.col("quantile") == quantiles).select("date", top="mean_return")
    bottom = daily.filter(pl.col("quantile") == 1).select("date", bottom="mean_return")
    return (
        top.join(bottom, on="date", how="inner")
        .select("date", spread=pl.col("top") - pl.col("bottom"))
        .sort("date")
    )


def quantile_turnover(frame: pl.DataFrame, quantile: int) -> pl.DataFrame:
    """Share of the names in `quantile` on each date that were not in it on the previous
    date of the frame (alphalens `quantile_turnover` with period 1). Columns date,
    turnover; the first date has no previous one and is omitted."""
    members = (
        frame.filter(pl.col("quantile") == quantile)
        .group_by("date").agg(pl.col("symbol"))
        .sort("date")
    )
    dates, rows, prev = [], [], None
    for day, names in members.iter_rows():
        current = set(names)
        if prev is not None and current:
            dates.append(day)
            rows.append(len(current - prev) / len(current))
        prev = current
    return pl.DataFrame({"date": dates, "turnover": rows},
                        schema={"date": pl.Date, "turnover": pl.Float64})


def probable_leakage(mean_rank_ic: float | None, threshold: float) -> bool:
    """A mean daily rank IC above `threshold` in absolute value is implausible for a broad
    universe (published daily models sit near 0.05) and flags probable leakage."""
    return mean_rank_ic is not None and abs(mean_rank_ic) > threshold
