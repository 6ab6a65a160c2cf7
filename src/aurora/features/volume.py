"""Volume-based features (10): surprise, Amihud illiquidity, turnover, volume-price trend.

Units: `volume` is in shares on the same adjustment basis as the prices (split-adjusted as of
the last date), `dollar_volume` is close x volume in USD, `shares` is shares outstanding known
at t (point in time, same basis as volume; missing when no fundamentals are known yet).

Missing bars: as in the price family; a log of a non-positive quantity is missing.
"""

from __future__ import annotations

import numpy as np

from aurora.features.ops import rcorr, rmean, rmedian, rstd, safe_log, shift, where
from aurora.features.spec import FeatureSpec
from aurora.features.wide import WidePanel

TURNOVER_FALLBACK_WINDOW = 250
AMIHUD_SCALE = 1e6


def daily_turnover(w: WidePanel) -> np.ndarray:
    """volume / shares when shares are known at t; else the documented fallback
    dollar_volume_t / median(dollar_volume over the last 250 sessions) (1.0 = a typical day).
    A day whose fallback is undefined (zero median) is missing."""
    shares, dv = w["shares"], w["dollar_volume"]
    known = shares > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        direct = w["volume"] / shares
        if known.all():
            return direct
        median = rmedian(dv, TURNOVER_FALLBACK_WINDOW, int(0.8 * TURNOVER_FALLBACK_WINDOW))
        fallback = where(median > 0, dv / median)
    return where(known, direct, fallback)


def _amihud(w: WidePanel) -> np.ndarray:
    dv = w["dollar_volume"]
    with np.errstate(divide="ignore", invalid="ignore"):
        daily = where(dv > 0, np.abs(w["f_ret_1d"]) / dv)
    return AMIHUD_SCALE * rmean(daily, 20)


def _vpt(w: WidePanel) -> np.ndarray:
    r = w["f_ret_1d"]
    vol = where(np.isnan(r), np.nan, w["volume"])
    return rmean(r * vol, 20) / rmean(vol, 20)


def _vsumd(w: WidePanel) -> np.ndarray:
    dv = w["volume"] - shift(w["volume"], 1)
    return rmean(dv, 20) / rmean(np.abs(dv), 20)


def _wvma(w: WidePanel) -> np.ndarray:
    x = np.abs(w["f_ret_1d"]) * w["volume"]
    return rstd(x, 20) / rmean(x, 20)


def _log_volume_change(w: WidePanel) -> np.ndarray:
    v = w["volume"]
    return np.log((v + 1.0) / (shift(v, 1) + 1.0))


SPECS: tuple[FeatureSpec, ...] = (
    FeatureSpec("f_volume_surprise", "volume", 20,
                "ln((volume_t + 1) / (mean(volume over t-20..t-1) + 1)): today's volume against"
                " its trailing 20-session average",
                lambda w: np.log((w["volume"] + 1.0) / (shift(rmean(w["volume"], 20), 1) + 1.0))),
    FeatureSpec("f_amihud_illiquidity", "volume", 20,
                "1e6 x mean(|f_ret_1d| / dollar_volume) over 20 sessions: price impact per USD 1M"
                " traded (Amihud 2002); days with zero dollar volume are skipped",
                _amihud),
    FeatureSpec("f_turnover_20d", "volume", TURNOVER_FALLBACK_WINDOW - 1 + 19,
                "mean over 20 sessions of volume / shares outstanding known at t (point in time,"
                " from fundamentals); fallback when no shares are known at t: dollar_volume /"
                " its own 250-session median (a day whose median is 0 counts as missing)",
                lambda w: rmean(daily_turnover(w), 20)),
    FeatureSpec("f_volume_ratio_5_60", "volume", 59,
                "ln((mean(volume, 5) + 1) / (mean(volume, 60) + 1)): short- against long-run"
                " volume",
                lambda w: np.log((rmean(w["volume"], 5) + 1.0) / (rmean(w["volume"], 60) + 1.0))),
    FeatureSpec("f_vpt_20d", "volume", 20,
                "sum(f_ret_1d x volume) / sum(volume) over 20 sessions: volume-price trend,"
                " the volume-weighted mean daily return",
                _vpt),
    FeatureSpec("f_corr_ret_dvol_20d", "volume", 20,
                "corr(f_ret_1d, ln((volume_t + 1)/(volume_{t-1} + 1))) over 20 sessions"
                " (Alpha158 CORD20)",
                lambda w: rcorr(w["f_ret_1d"], _log_volume_change(w), 20)),
    FeatureSpec("f_volume_cv_20d", "volume", 19,
                "std(volume, 20) / mean(volume, 20) (Alpha158 VSTD20 with a mean denominator)",
                lambda w: rstd(w["volume"], 20) / rmean(w["volume"], 20)),
    FeatureSpec("f_wvma_20d", "volume", 20,
                "std(|f_ret_1d| x volume, 20) / mean(|f_ret_1d| x volume, 20) (Alpha158 WVMA20)",
                _wvma),
    FeatureSpec("f_vsumd_20d", "volume", 20,
                "(sum of volume increases - sum of decreases) / sum(|volume change|) over 20"
                " sessions (Alpha158 VSUMD20)",
                _vsumd),
    FeatureSpec("f_log_dollar_volume_20d", "volume", 19,
                "ln(mean(close x volume, 20)): liquidity/size in log USD",
                lambda w: safe_log(rmean(w["dollar_volume"], 20))),
)
