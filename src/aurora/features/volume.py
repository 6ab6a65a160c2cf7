"""Volume-based features (10): surprise, Amihud illiquidity, turnover, volume-price trend.

Units: `volume` is in shares on the same adjustment basis as the prices (split-adjusted as of
the last date), `dollar_volume` is close x volume in USD, `shares` is shares outstanding known
at t (point in time, same basis as volume; null when no fundamentals are known yet).

Missing bars: as in the price family; a log of a non-positive quantity is null.
"""

from __future__ import annotations

import polars as pl

from aurora.features.ops import DV, R, V, rcorr, rmean, rstd, safe_log
from aurora.features.spec import FeatureSpec

_R = R
TURNOVER_FALLBACK_WINDOW = 250
AMIHUD_SCALE = 1e6


def daily_turnover() -> pl.Expr:
    """volume / shares when shares are known at t; else the documented fallback
    dollar_volume_t / median(dollar_volume over the last 250 sessions) (1.0 = a typical day)."""
    fallback = DV / DV.rolling_median(TURNOVER_FALLBACK_WINDOW,
                                      min_samples=int(0.8 * TURNOVER_FALLBACK_WINDOW))
    known = pl.col("shares").is_not_null() & (pl.col("shares") > 0)
    return pl.when(known).then(V / pl.col("shares")).otherwise(fallback)


def _amihud() -> pl.Expr:
    daily = pl.when(DV > 0).then(_R.abs() / DV)
    return AMIHUD_SCALE * rmean(daily, 20)


def _vpt() -> pl.Expr:
    vol = pl.when(_R.is_not_null()).then(V)
    return rmean(_R * vol, 20) / rmean(vol, 20)


def _vsumd() -> pl.Expr:
    dv = V - V.shift(1)
    return rmean(dv, 20) / rmean(dv.abs(), 20)


def _wvma() -> pl.Expr:
    x = _R.abs() * V
    return rstd(x, 20) / rmean(x, 20)


SPECS: tuple[FeatureSpec, ...] = (
    FeatureSpec("f_volume_surprise", "volume", 20,
                "ln((volume_t + 1) / (mean(volume over t-20..t-1) + 1)): today's volume against"
                " its trailing 20-session average",
                lambda: ((V + 1.0) / (rmean(V, 20).shift(1) + 1.0)).log()),
    FeatureSpec("f_amihud_illiquidity", "volume", 20,
                "1e6 x mean(|f_ret_1d| / dollar_volume) over 20 sessions: price impact per USD 1M"
                " traded (Amihud 2002); days with zero dollar volume are skipped",
                _amihud),
    FeatureSpec("f_turnover_20d", "volume", TURNOVER_FALLBACK_WINDOW - 1 + 19,
                "mean over 20 sessions of volume / shares outstanding known at t (point in time,"
                " from fundamentals); fallback when no shares are known at t: dollar_volume /"
                " its own 250-session median",
                lambda: rmean(daily_turnover(), 20)),
    FeatureSpec("f_volume_ratio_5_60", "volume", 59,
                "ln((mean(volume, 5) + 1) / (mean(volume, 60) + 1)): short- against long-run"
                " volume",
                lambda: ((rmean(V, 5) + 1.0) / (rmean(V, 60) + 1.0)).log()),
    FeatureSpec("f_vpt_20d", "volume", 20,
                "sum(f_ret_1d x volume) / sum(volume) over 20 sessions: volume-price trend,"
                " the volume-weighted mean daily return",
                _vpt),
    FeatureSpec("f_corr_ret_dvol_20d", "volume", 20,
                "corr(f_ret_1d, ln((volume_t + 1)/(volume_{t-1} + 1))) over 20 sessions"
                " (Alpha158 CORD20)",
                lambda: rcorr(_R, ((V + 1.0) / (V.shift(1) + 1.0)).log(), 20)),
    FeatureSpec("f_volume_cv_20d", "volume", 19,
                "std(volume, 20) / mean(volume, 20) (Alpha158 VSTD20 with a mean denominator)",
                lambda: rstd(V, 20) / rmean(V, 20)),
    FeatureSpec("f_wvma_20d", "volume", 20,
                "std(|f_ret_1d| x volume, 20) / mean(|f_ret_1d| x volume, 20) (Alpha158 WVMA20)",
                _wvma),
    FeatureSpec("f_vsumd_20d", "volume", 20,
                "(sum of volume increases - sum of decreases) / sum(|volume change|) over 20"
                " sessions (Alpha158 VSUMD20)",
                _vsumd),
    FeatureSpec("f_log_dollar_volume_20d", "volume", 19,
                "ln(mean(close x volume, 20)): liquidity/size in log USD",
                lambda: safe_log(rmean(DV, 20))),
)
