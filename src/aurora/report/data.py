"""The numbers behind the report's charts: short pure functions over polars frames.

Conventions: `date` columns are feature dates (the close the features are computed at);
returns are fractions; a month is the first day of its calendar month (Date). Nothing here
reads the store, prints or draws; `aurora.report.api` feeds these and `charts` draws them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import polars as pl

from aurora import calendar
from aurora.predict import metrics
from aurora.predict.labels import forward_returns

HORIZONS = (1, 5, 10, 20)
PSI_BINS = 10
PSI_FLOOR = 1e-4  # an empty bin's share, so the log stays finite


def _month(column: str = "date") -> pl.Expr:
    return pl.col(column).dt.truncate("1mo").alias("month")


def coverage(bars: pl.DataFrame) -> pl.DataFrame:
    """Share of the NYSE sessions each symbol could have traded in each month, from its
    first bar to its last (so a listing or delisting mid-month is not a gap), on which it
    has a bar. Columns symbol, month, share (0..1), from each symbol's first to its last
    bar month. `bars`: date, symbol."""
    if bars.height == 0:
        return pl.DataFrame(schema={"symbol": pl.String, "month": pl.Date,
                                    "share": pl.Float64})
    sessions = np.array(calendar.sessions(bars["date"].min(), bars["date"].max()),
                        dtype="datetime64[D]")
    months = pl.DataFrame({"date": sessions.astype("datetime64[D]").tolist()}) \
        .group_by(_month()).agg(start=pl.col("date").min(), end=pl.col("date").max())
    have = bars.group_by("symbol", _month()).agg(bars=pl.col("date").n_unique())
    span = bars.group_by("symbol").agg(first=pl.col("date").min(), last=pl.col("date").max())
    grid = span.join(months, how="cross").filter(
        (pl.col("end") >= pl.col("first")) & (pl.col("start") <= pl.col("last")))
    lo = grid.select(pl.max_horizontal("start", "first")).to_series().to_numpy()
    hi = grid.select(pl.min_horizontal("end", "last")).to_series().to_numpy()
    expected = (np.searchsorted(sessions, hi.astype("datetime64[D]"), side="right")
                - np.searchsorted(sessions, lo.astype("datetime64[D]"), side="left"))
    return (grid.with_columns(expected=pl.Series(expected))
            .join(have, on=["symbol", "month"], how="left")
            .select("symbol", "month", share=(pl.col("bars").fill_null(0)
                                               / pl.col("expected")).clip(0.0, 1.0))
            .sort("symbol", "month"))


def worst_covered(frame: pl.DataFrame, limit: int) -> pl.DataFrame:
    """The rows of `coverage` of the `limit` symbols with the lowest mean share (ties by
    symbol): what a chart can show of a large universe."""
    worst = frame.group_by("symbol").agg(mean=pl.col("share").mean()) \
        .sort("mean", "symbol").head(limit)["symbol"]
    return frame.filter(pl.col("symbol").is_in(worst.implode()))


def missing_share(features: pl.DataFrame, names: Sequence[str]) -> pl.DataFrame:
    """Share of rows whose value is null or NaN, per feature and month: columns feature,
    month, share (0..1)."""
    monthly = features.group_by(_month()).agg(
        [(pl.col(n).is_null() | pl.col(n).is_nan()).mean().alias(n) for n in names])
    return monthly.unpivot(index="month", variable_name="feature", value_name="share") \
        .select("feature", "month", "share").sort("feature", "month")


def dispersion(features: pl.DataFrame, names: Sequence[str]) -> pl.DataFrame:
    """Cross-sectional dispersion per feature and month: the month's median of the daily
    standard deviation across symbols, divided by the feature's median over all days (so
    features of any unit share one scale; 1 = usual, 0 = collapsed). Columns feature,
    month, ratio."""
    daily = features.group_by("date").agg(
        [pl.col(n).fill_nan(None).std().alias(n) for n in names])
    usual = daily.select([pl.col(n).median() for n in names]).row(0, named=True)
    monthly = daily.group_by(_month()).agg([pl.col(n).median() for n in names])
    ratios = monthly.select("month", *[
        (pl.col(n) / usual[n]) if usual[n] else pl.lit(None, pl.Float64).alias(n)
        for n in names])
    return ratios.unpivot(index="month", variable_name="feature", value_name="ratio") \
        .select("feature", "month", "ratio").sort("feature", "month")


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = PSI_BINS) -> float | None:
    """Population stability index of `actual` against `expected` over the expected
    sample's quantile bins: sum((a - e) * ln(a / e)) of the bin shares, each floored at
    PSI_FLOOR. NaNs are dropped; None when either sample is empty. 0 = same distribution;
    above 0.1 a shift, above 0.25 a large one (the usual reading)."""
    e = expected[~np.isnan(expected)]
    a = actual[~np.isnan(actual)]
    if e.size == 0 or a.size == 0:
        return None
    edges = np.unique(np.quantile(e, np.linspace(0, 1, bins + 1))[1:-1])
    e_share = np.bincount(np.searchsorted(edges, e, side="right"), minlength=edges.size + 1)
    a_share = np.bincount(np.searchsorted(edges, a, side="right"), minlength=edges.size + 1)
    e_share = np.maximum(e_share / e.size, PSI_FLOOR)
    a_share = np.maximum(a_share / a.size, PSI_FLOOR)
    return float(np.sum((a_share - e_share) * np.log(a_share / e_share)))


def drift(features: pl.DataFrame, names: Sequence[str], recent_sessions: int,
          training: tuple[object, object] | None) -> pl.DataFrame:
    """PSI of each feature's last `recent_sessions` feature dates against the training
    window (`training`: first and last feature date, inclusive; None: from the first date),
    cut before the recent dates so the two samples never share a row. Columns feature, psi
    (null when a side has no value)."""
    dates = features["date"].unique().sort()
    recent_from = dates[max(0, dates.len() - recent_sessions)]
    recent = features.filter(pl.col("date") >= recent_from)
    base = features.filter(pl.col("date") < recent_from)
    if training is not None:
        base = base.filter(pl.col("date").is_between(*training))
    rows = [(n, psi(base[n].cast(pl.Float64).fill_null(math.nan).to_numpy(),
                    recent[n].cast(pl.Float64).fill_null(math.nan).to_numpy()))
            for n in names]
    return pl.DataFrame(rows, schema={"feature": pl.String, "psi": pl.Float64}, orient="row")


def rolling_ic(daily: pl.DataFrame, window: int) -> pl.DataFrame:
    """`daily` (date, ic, rank_ic) with the trailing `window`-date means ic_mean and
    rank_ic_mean (a mean once half the window has values)."""
    half = max(1, window // 2)
    return daily.sort("date").with_columns(
        ic_mean=pl.col("ic").rolling_mean(window, min_samples=half),
        rank_ic_mean=pl.col("rank_ic").rolling_mean(window, min_samples=half))


def _ic_summary(frame: pl.DataFrame, lag: int) -> dict[str, float | int | None]:
    daily = metrics.information_coefficient(frame, method="spearman")
    s = metrics.series_summary(daily["ic"].to_numpy(), lag)
    t, mean = s["t"], s["mean"]
    se = abs(mean / t) if mean is not None and t else None
    return {"rank_ic": mean, "se": se, "t": t, "dates": s["n"]}


def ic_by_horizon(scores: pl.DataFrame, prices: pl.DataFrame,
                  horizons: Sequence[int] = HORIZONS) -> pl.DataFrame:
    """Mean daily rank IC of `scores` (date, symbol, score) against the forward return over
    each horizon (labels as in training: from the decision date's close, adjusted prices),
    with its Newey-West standard error (lag h - 1). Columns horizon, rank_ic, se, t,
    dates."""
    rows = []
    for h in horizons:
        labels = forward_returns(prices, h).select("date", "symbol", label="fwd_return")
        joined = scores.join(labels, on=["date", "symbol"], how="inner")
        rows.append({"horizon": h, **_ic_summary(joined, h - 1)})
    return pl.DataFrame(rows, schema={"horizon": pl.Int64, "rank_ic": pl.Float64,
                                      "se": pl.Float64, "t": pl.Float64, "dates": pl.Int64})


def ic_by_sector(oos: pl.DataFrame, sectors: pl.DataFrame, horizon: int) -> pl.DataFrame:
    """Mean daily rank IC within each sector of `oos` (date, symbol, score, label), with
    its Newey-West standard error. A symbol with no sector counts as "unknown". Columns
    sector, rank_ic, se, t, dates, names."""
    tagged = oos.join(sectors.select("symbol", "sector"), on="symbol", how="left") \
        .with_columns(pl.col("sector").fill_null("unknown"))
    rows = []
    for sector in sorted(tagged["sector"].unique().to_list()):
        part = tagged.filter(pl.col("sector") == sector)
        rows.append({"sector": sector, **_ic_summary(part, horizon - 1),
                     "names": part["symbol"].n_unique()})
    return pl.DataFrame(rows, schema={"sector": pl.String, "rank_ic": pl.Float64,
                                      "se": pl.Float64, "t": pl.Float64, "dates": pl.Int64,
                                      "names": pl.Int64})


def quantile_means(oos: pl.DataFrame, quantiles: int) -> pl.DataFrame:
    """Mean forward return (the label's horizon) per score quantile: columns quantile (1 =
    lowest score), mean_return, dates."""
    daily = metrics.quantile_daily_returns(metrics.assign_quantiles(oos, quantiles))
    return metrics.mean_return_by_quantile(daily)


def cumulative_quantile_returns(scores: pl.DataFrame, prices: pl.DataFrame,
                                quantiles: int) -> pl.DataFrame:
    """Growth of 1 in each score quantile held one session at a time: each date's quantile
    buys its names equally at the decision date's close and sells at the next close
    (one-session labels, so the days compound without overlap). Columns date, quantile,
    cumulative (a fraction: 0.1 = +10%)."""
    labels = forward_returns(prices, 1).select("date", "symbol", label="fwd_return")
    joined = scores.join(labels, on=["date", "symbol"], how="inner")
    daily = metrics.quantile_daily_returns(metrics.assign_quantiles(joined, quantiles))
    return daily.sort("quantile", "date").with_columns(
        cumulative=(pl.col("mean_return") + 1.0).cum_prod().over("quantile") - 1.0
    ).select("date", "quantile", "cumulative")


def monthly_costs(daily: pl.DataFrame, kinds: Sequence[str]) -> pl.DataFrame:
    """The backtest's costs summed by month: columns month, kind, usd."""
    return daily.group_by(_month()).agg([pl.col(k).sum() for k in kinds]) \
        .unpivot(index="month", variable_name="kind", value_name="usd").sort("month", "kind")
