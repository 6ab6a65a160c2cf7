"""Price-based features (15): returns, momentum, reversal, volatility, candle shape.

Every price feature is a ratio of prices of the same symbol inside its window, so it does not
depend on the base of the back-adjustment: prices adjusted as of the last date give the same
values as prices adjusted as of each date t. No raw price level is used.

Missing bars: a feature that needs a specific bar (a return's two closes, the day's high and
low) is missing when that bar is missing; a rolling statistic uses the bars present if they
cover >= 80% of its window.
"""

from __future__ import annotations

import math

import numpy as np

from aurora.features.ops import ratio, rmax, rmean, rmin, rstd, shift, where
from aurora.features.spec import FeatureSpec
from aurora.features.wide import WidePanel


def ret(w: WidePanel, k: int) -> np.ndarray:
    """Simple close-to-close return over k sessions: close_t / close_{t-k} - 1."""
    return ratio(w["close"], shift(w["close"], k)) - 1.0


def _reversal(w: WidePanel) -> np.ndarray:
    c = w["close"]
    sd = rstd(c, 20)
    return where(sd > 0, -ratio(c - rmean(c, 20), sd))


def _close_location(w: WidePanel) -> np.ndarray:
    c, h, lo = w["close"], w["high"], w["low"]
    rng = h - lo
    value = where(rng > 0, ratio(2.0 * c - h - lo, rng), 0.0)
    return where(np.isnan(rng) | np.isnan(c), np.nan, value)


def _rsv(w: WidePanel) -> np.ndarray:
    lo, hi, c = rmin(w["low"], 20), rmax(w["high"], 20), w["close"]
    value = where(hi > lo, ratio(c - lo, hi - lo), 0.5)
    return where(np.isnan(lo) | np.isnan(hi) | np.isnan(c), np.nan, value)


def _parkinson(w: WidePanel) -> np.ndarray:
    return np.sqrt(rmean(np.log(w["high"] / w["low"]) ** 2, 20) / (4.0 * math.log(2.0)))


def _downside(w: WidePanel) -> np.ndarray:
    return np.sqrt(rmean(np.minimum(w["f_ret_1d"], 0.0) ** 2, 20))


SPECS: tuple[FeatureSpec, ...] = (
    FeatureSpec("f_ret_1d", "price", 1,
                "close_t / close_{t-1} - 1 (simple daily return on adjusted closes)",
                lambda w: ret(w, 1)),
    FeatureSpec("f_ret_5d", "price", 5,
                "close_t / close_{t-5} - 1 (weekly return)",
                lambda w: ret(w, 5)),
    FeatureSpec("f_ret_20d", "price", 20,
                "close_t / close_{t-20} - 1 (monthly return)",
                lambda w: ret(w, 20)),
    FeatureSpec("f_mom_12_1", "price", 252,
                "close_{t-21} / close_{t-252} - 1 (12-month momentum skipping the last month,"
                " Jegadeesh-Titman)",
                lambda w: ratio(shift(w["close"], 21), shift(w["close"], 252)) - 1.0),
    FeatureSpec("f_reversal_20d", "price", 19,
                "-(close_t - mean(close, 20)) / std(close, 20): short-term reversal, the negative"
                " Bollinger z-score of the close over the last 20 sessions (null if std = 0)",
                _reversal),
    FeatureSpec("f_vol_5d", "price", 5,
                "sample std (ddof=1) of f_ret_1d over the last 5 sessions",
                lambda w: rstd(w["f_ret_1d"], 5)),
    FeatureSpec("f_vol_20d", "price", 20,
                "sample std (ddof=1) of f_ret_1d over the last 20 sessions",
                lambda w: rstd(w["f_ret_1d"], 20)),
    FeatureSpec("f_vol_60d", "price", 60,
                "sample std (ddof=1) of f_ret_1d over the last 60 sessions",
                lambda w: rstd(w["f_ret_1d"], 60)),
    FeatureSpec("f_downside_vol_20d", "price", 20,
                "sqrt(mean(min(f_ret_1d, 0)^2)) over 20 sessions (downside semi-deviation)",
                _downside),
    FeatureSpec("f_parkinson_vol_20d", "price", 19,
                "sqrt(mean(ln(high/low)^2) / (4 ln 2)) over 20 sessions (Parkinson range"
                " volatility)",
                _parkinson),
    FeatureSpec("f_intraday_ret", "price", 0,
                "close_t / open_t - 1 (Alpha158 KMID: open-to-close return)",
                lambda w: ratio(w["close"], w["open"]) - 1.0),
    FeatureSpec("f_overnight_ret", "price", 1,
                "open_t / close_{t-1} - 1 (overnight gap)",
                lambda w: ratio(w["open"], shift(w["close"], 1)) - 1.0),
    FeatureSpec("f_close_location", "price", 0,
                "(2 close - high - low) / (high - low): where the close sits in the day's range,"
                " -1 at the low, +1 at the high, 0 when high = low (Alpha158 KSFT2)",
                _close_location),
    FeatureSpec("f_rsv_20d", "price", 19,
                "(close - min(low, 20)) / (max(high, 20) - min(low, 20)): stochastic %K over 20"
                " sessions, 0.5 when the range is 0 (Alpha158 RSV20)",
                _rsv),
    FeatureSpec("f_max_ret_20d", "price", 20,
                "max of f_ret_1d over the last 20 sessions (lottery/MAX effect, Bali et al.)",
                lambda w: rmax(w["f_ret_1d"], 20)),
)
