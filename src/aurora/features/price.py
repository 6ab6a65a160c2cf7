"""Price-based features (15): returns, momentum, reversal, volatility, candle shape.

Every price feature is a ratio of prices of the same symbol inside its window, so it does not
depend on the base of the back-adjustment: prices adjusted as of the last date give the same
values as prices adjusted as of each date t. No raw price level is used.

Missing bars: a feature that needs a specific bar (a return's two closes) is null when that
bar is missing; a rolling statistic uses the bars present if they cover >= 80% of its window.
"""

from __future__ import annotations

import math

import polars as pl

from aurora.features.ops import C, H, L, O, R, ret, rmax, rmean, rmin, rstd
from aurora.features.spec import FeatureSpec

_R = R


def _reversal() -> pl.Expr:
    sd = rstd(C, 20)
    return pl.when(sd > 0).then(-(C - rmean(C, 20)) / sd)


def _close_location() -> pl.Expr:
    rng = H - L
    return pl.when(rng > 0).then((2.0 * C - H - L) / rng).otherwise(0.0)


def _rsv() -> pl.Expr:
    lo, hi = rmin(L, 20), rmax(H, 20)
    return pl.when(hi > lo).then((C - lo) / (hi - lo)).otherwise(0.5)


def _parkinson() -> pl.Expr:
    return (rmean((H / L).log() ** 2, 20) / (4.0 * math.log(2.0))).sqrt()


SPECS: tuple[FeatureSpec, ...] = (
    FeatureSpec("f_ret_1d", "price", 1,
                "close_t / close_{t-1} - 1 (simple daily return on adjusted closes)",
                lambda: ret(1), windowed=False),
    FeatureSpec("f_ret_5d", "price", 5,
                "close_t / close_{t-5} - 1 (weekly return)",
                lambda: ret(5), windowed=False),
    FeatureSpec("f_ret_20d", "price", 20,
                "close_t / close_{t-20} - 1 (monthly return)",
                lambda: ret(20), windowed=False),
    FeatureSpec("f_mom_12_1", "price", 252,
                "close_{t-21} / close_{t-252} - 1 (12-month momentum skipping the last month,"
                " Jegadeesh-Titman)",
                lambda: C.shift(21) / C.shift(252) - 1.0, windowed=False),
    FeatureSpec("f_reversal_20d", "price", 19,
                "-(close_t - mean(close, 20)) / std(close, 20): short-term reversal, the negative"
                " Bollinger z-score of the close over the last 20 sessions (null if std = 0)",
                _reversal),
    FeatureSpec("f_vol_5d", "price", 5,
                "sample std (ddof=1) of f_ret_1d over the last 5 sessions",
                lambda: rstd(_R, 5)),
    FeatureSpec("f_vol_20d", "price", 20,
                "sample std (ddof=1) of f_ret_1d over the last 20 sessions",
                lambda: rstd(_R, 20)),
    FeatureSpec("f_vol_60d", "price", 60,
                "sample std (ddof=1) of f_ret_1d over the last 60 sessions",
                lambda: rstd(_R, 60)),
    FeatureSpec("f_downside_vol_20d", "price", 20,
                "sqrt(mean(min(f_ret_1d, 0)^2)) over 20 sessions (downside semi-deviation)",
                lambda: rmean(pl.min_horizontal(_R, pl.lit(0.0)) ** 2, 20).sqrt()),
    FeatureSpec("f_parkinson_vol_20d", "price", 19,
                "sqrt(mean(ln(high/low)^2) / (4 ln 2)) over 20 sessions (Parkinson range"
                " volatility)",
                _parkinson),
    FeatureSpec("f_intraday_ret", "price", 0,
                "close_t / open_t - 1 (Alpha158 KMID: open-to-close return)",
                lambda: C / O - 1.0, windowed=False),
    FeatureSpec("f_overnight_ret", "price", 1,
                "open_t / close_{t-1} - 1 (overnight gap)",
                lambda: O / C.shift(1) - 1.0, windowed=False),
    FeatureSpec("f_close_location", "price", 0,
                "(2 close - high - low) / (high - low): where the close sits in the day's range,"
                " -1 at the low, +1 at the high, 0 when high = low (Alpha158 KSFT2)",
                _close_location, windowed=False),
    FeatureSpec("f_rsv_20d", "price", 19,
                "(close - min(low, 20)) / (max(high, 20) - min(low, 20)): stochastic %K over 20"
                " sessions, 0.5 when the range is 0 (Alpha158 RSV20)",
                _rsv),
    FeatureSpec("f_max_ret_20d", "price", 20,
                "max of f_ret_1d over the last 20 sessions (lottery/MAX effect, Bali et al.)",
                lambda: rmax(_R, 20)),
)
