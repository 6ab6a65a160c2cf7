"""The 45 features of the panel as expressions (`aurora.features.expr`, `.operators`), and
the intraday family (`INTRADAY`, outside the 45: built with `build.intraday`).

Each entry names a feature, its family, its formula in words and its expression; the
look-back is the expression's (derived, never typed). Shared parts (`RET_1D`, `MKT`, ...)
are ordinary expressions: the planner computes each once however many features use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from aurora.features.expr import (
    Abs,
    Coalesce,
    Expr,
    Less,
    Log,
    Present,
    Sqrt,
    Where,
    close,
    dollar_volume,
    high,
    intraday_close_vwap_gap,
    intraday_ret_first_30min,
    intraday_ret_last_30min,
    intraday_rv_5min,
    intraday_volume_share_last_30min,
    low,
    open_,
    sector,
    shares_outstanding,
    volume,
)
from aurora.features.operators import (
    Beta,
    Corr,
    Delta,
    Demean,
    Market,
    Max,
    Mean,
    Median,
    Min,
    Rank,
    Ref,
    Std,
    ZScore,
)

Family = Literal["price", "volume", "cross_sectional", "residual", "intraday", "user"]
TURNOVER_FALLBACK_WINDOW = 250
# The turnover fallback's level: a typical daily turnover (fraction of shares outstanding) of
# a US large cap (the S&P 500 sample: median 0.0063-0.0066 on the days whose shares are known).
# The fallback's relative dollar volume is ~1 on a usual day; unscaled it was ~100x the
# turnover of the symbols whose shares are known (f_turnover_20d ~1 against ~0.007).
TURNOVER_FALLBACK_LEVEL = 0.007
AMIHUD_SCALE = 1e6
BETA_WINDOW = 60


@dataclass(frozen=True)
class Feature:
    """One feature: name, family, formula in words, expression."""

    name: str
    family: Family
    formula: str
    expr: Expr

    @property
    def lookback(self) -> int:
        return self.expr.lookback


def ret(k: int) -> Expr:
    """close_t / close_{t-k} - 1."""
    return close / Ref(close, k) - 1


RET_1D, RET_5D, RET_20D = ret(1), ret(5), ret(20)
MOM_12_1 = Ref(close, 21) / Ref(close, 252) - 1
VOL_5D, VOL_20D = Std(RET_1D, 5), Std(RET_1D, 20)
_SD_20 = Std(close, 20)
_RANGE, _LOW_20, _HIGH_20 = high - low, Min(low, 20), Max(high, 20)
_MEDIAN_DV = Median(dollar_volume, TURNOVER_FALLBACK_WINDOW)
TURNOVER = Coalesce(volume / Where(shares_outstanding > 0, shares_outstanding),
                    Where(_MEDIAN_DV > 0,
                          TURNOVER_FALLBACK_LEVEL * dollar_volume / _MEDIAN_DV))
VOLUME_SURPRISE = Log((volume + 1) / (Ref(Mean(volume, 20), 1) + 1))
AMIHUD = AMIHUD_SCALE * Mean(Where(dollar_volume > 0, Abs(RET_1D) / dollar_volume), 20)
TURNOVER_20D = Mean(TURNOVER, 20)
LOG_DOLLAR_VOLUME_20D = Log(Mean(dollar_volume, 20))
_RET_VOLUME = Where(Present(RET_1D), volume)
_VOLUME_CHANGE = Delta(volume, 1)
_WVMA = Abs(RET_1D) * volume
MKT = Market(RET_1D)
BETA = Beta(RET_1D, MKT, BETA_WINDOW)
EPS = RET_1D - Ref(BETA, 1) * MKT

PRICE = (
    Feature("f_ret_1d", "price", "close_t / close_{t-1} - 1 (simple daily return on adjusted"
            " closes)", RET_1D),
    Feature("f_ret_5d", "price", "close_t / close_{t-5} - 1 (weekly return)", RET_5D),
    Feature("f_ret_20d", "price", "close_t / close_{t-20} - 1 (monthly return)", RET_20D),
    Feature("f_mom_12_1", "price", "close_{t-21} / close_{t-252} - 1 (12-month momentum"
            " skipping the last month, Jegadeesh-Titman)", MOM_12_1),
    Feature("f_reversal_20d", "price", "-(close_t - mean(close, 20)) / std(close, 20):"
            " short-term reversal, the negative Bollinger z-score of the close over the last 20"
            " sessions (null if std = 0)",
            Where(_SD_20 > 0, -((close - Mean(close, 20)) / _SD_20))),
    Feature("f_vol_5d", "price", "sample std (ddof=1) of f_ret_1d over the last 5 sessions",
            VOL_5D),
    Feature("f_vol_20d", "price", "sample std (ddof=1) of f_ret_1d over the last 20 sessions",
            VOL_20D),
    Feature("f_vol_60d", "price", "sample std (ddof=1) of f_ret_1d over the last 60 sessions",
            Std(RET_1D, 60)),
    Feature("f_downside_vol_20d", "price", "sqrt(mean(min(f_ret_1d, 0)^2)) over 20 sessions"
            " (downside semi-deviation)", Sqrt(Mean(Less(RET_1D, 0) ** 2, 20))),
    Feature("f_parkinson_vol_20d", "price", "sqrt(mean(ln(high/low)^2) / (4 ln 2)) over 20"
            " sessions (Parkinson range volatility)",
            Sqrt(Mean(Log(high / low) ** 2, 20) / (4.0 * math.log(2.0)))),
    Feature("f_intraday_ret", "price", "close_t / open_t - 1 (Alpha158 KMID: open-to-close"
            " return)", close / open_ - 1),
    Feature("f_overnight_ret", "price", "open_t / close_{t-1} - 1 (overnight gap)",
            open_ / Ref(close, 1) - 1),
    Feature("f_close_location", "price", "(2 close - high - low) / (high - low): where the"
            " close sits in the day's range, -1 at the low, +1 at the high, 0 when high = low"
            " (Alpha158 KSFT2)", Where(_RANGE > 0, (2 * close - high - low) / _RANGE, 0)),
    Feature("f_rsv_20d", "price", "(close - min(low, 20)) / (max(high, 20) - min(low, 20)):"
            " stochastic %K over 20 sessions, 0.5 when the range is 0 (Alpha158 RSV20)",
            Where(_HIGH_20 > _LOW_20, (close - _LOW_20) / (_HIGH_20 - _LOW_20), 0.5)),
    Feature("f_max_ret_20d", "price", "max of f_ret_1d over the last 20 sessions"
            " (lottery/MAX effect, Bali et al.)", Max(RET_1D, 20)),
)

VOLUME = (
    Feature("f_volume_surprise", "volume", "ln((volume_t + 1) / (mean(volume over"
            " t-20..t-1) + 1)): today's volume against its trailing 20-session average",
            VOLUME_SURPRISE),
    Feature("f_amihud_illiquidity", "volume", "1e6 x mean(|f_ret_1d| / dollar_volume) over 20"
            " sessions: price impact per USD 1M traded (Amihud 2002); days with zero dollar"
            " volume are skipped", AMIHUD),
    Feature("f_turnover_20d", "volume", "mean over 20 sessions of volume / shares outstanding"
            " known at t (point in time, from fundamentals); fallback when no shares are known"
            f" at t: {TURNOVER_FALLBACK_LEVEL:g} (a typical daily turnover) x dollar_volume / its"
            f" own {TURNOVER_FALLBACK_WINDOW}-session median (a day whose median is 0 counts as"
            " missing)", TURNOVER_20D),
    Feature("f_volume_ratio_5_60", "volume", "ln((mean(volume, 5) + 1) / (mean(volume, 60) +"
            " 1)): short- against long-run volume",
            Log((Mean(volume, 5) + 1) / (Mean(volume, 60) + 1))),
    Feature("f_vpt_20d", "volume", "sum(f_ret_1d x volume) / sum(volume) over 20 sessions:"
            " volume-price trend, the volume-weighted mean daily return",
            Mean(RET_1D * _RET_VOLUME, 20) / Mean(_RET_VOLUME, 20)),
    Feature("f_corr_ret_dvol_20d", "volume", "corr(f_ret_1d, ln((volume_t + 1)/(volume_{t-1}"
            " + 1))) over 20 sessions (Alpha158 CORD20)",
            Corr(RET_1D, Log((volume + 1) / (Ref(volume, 1) + 1)), 20)),
    Feature("f_volume_cv_20d", "volume", "std(volume, 20) / mean(volume, 20) (Alpha158 VSTD20"
            " with a mean denominator)", Std(volume, 20) / Mean(volume, 20)),
    Feature("f_wvma_20d", "volume", "std(|f_ret_1d| x volume, 20) / mean(|f_ret_1d| x volume,"
            " 20) (Alpha158 WVMA20)", Std(_WVMA, 20) / Mean(_WVMA, 20)),
    Feature("f_vsumd_20d", "volume", "(sum of volume increases - sum of decreases) / sum(|volume"
            " change|) over 20 sessions (Alpha158 VSUMD20)",
            Mean(_VOLUME_CHANGE, 20) / Mean(Abs(_VOLUME_CHANGE), 20)),
    Feature("f_log_dollar_volume_20d", "volume", "ln(mean(close x volume, 20)): liquidity/size"
            " in log USD", LOG_DOLLAR_VOLUME_20D),
)

CROSS_SECTIONAL = (
    Feature("f_cs_rank_ret", "cross_sectional", "percentile rank of f_ret_1d across symbols on"
            " the date", Rank(RET_1D)),
    Feature("f_cs_zscore_vol", "cross_sectional", "cross-sectional z-score of f_vol_5d on the"
            " date", ZScore(VOL_5D)),
    Feature("f_cs_rank_ret_5d", "cross_sectional", "percentile rank of f_ret_5d on the date",
            Rank(RET_5D)),
    Feature("f_cs_rank_ret_20d", "cross_sectional", "percentile rank of f_ret_20d on the date",
            Rank(RET_20D)),
    Feature("f_cs_rank_mom_12_1", "cross_sectional", "percentile rank of f_mom_12_1 on the"
            " date", Rank(MOM_12_1)),
    Feature("f_cs_zscore_volume_surprise", "cross_sectional", "cross-sectional z-score of"
            " f_volume_surprise on the date", ZScore(VOLUME_SURPRISE)),
    Feature("f_cs_rank_amihud", "cross_sectional", "percentile rank of f_amihud_illiquidity on"
            " the date", Rank(AMIHUD)),
    Feature("f_cs_rank_turnover", "cross_sectional", "percentile rank of f_turnover_20d on the"
            " date", Rank(TURNOVER_20D)),
    Feature("f_cs_rank_dollar_volume", "cross_sectional", "percentile rank of"
            " f_log_dollar_volume_20d on the date (size/liquidity rank)",
            Rank(LOG_DOLLAR_VOLUME_20D)),
    Feature("f_rs_market_ret_20d", "cross_sectional", "f_ret_20d minus the equal-weight mean"
            " f_ret_20d of all symbols on the date (relative strength against the market)",
            Demean(RET_20D)),
    Feature("f_rs_sector_ret_20d", "cross_sectional", "f_ret_20d minus the equal-weight mean"
            " f_ret_20d of the symbol's sector on the date (relative strength against peers)",
            Demean(RET_20D, sector)),
    Feature("f_rs_sector_rank_ret_20d", "cross_sectional", "percentile rank of f_ret_20d"
            " within the symbol's sector on the date", Rank(RET_20D, sector)),
)

RESIDUAL = (
    Feature("f_ret_market_neutral", "residual", "f_ret_1d_t - beta_{t-1} x mkt_t, where mkt is"
            " the equal-weight market return and beta_{t-1} the symbol's OLS beta to it over"
            " sessions t-60..t-1", EPS),
    Feature("f_beta_mkt_60d", "residual", "cov(f_ret_1d, mkt) / var(mkt) over sessions"
            " t-59..t (trailing market beta)", BETA),
    Feature("f_resid_ret_20d", "residual", "20 x mean of f_ret_market_neutral over the last 20"
            " sessions (residual momentum/reversal, Blitz-Huij-Martens)", 20 * Mean(EPS, 20)),
    Feature("f_resid_vol_20d", "residual", "sample std of f_ret_market_neutral over the last 20"
            " sessions (idiosyncratic volatility, Ang et al. 2006)", Std(EPS, 20)),
    Feature("f_idio_share_60d", "residual", "1 - corr(f_ret_1d, mkt)^2 over sessions t-59..t:"
            " share of return variance not explained by the market",
            1 - Corr(RET_1D, MKT, BETA_WINDOW) ** 2),
    Feature("f_ret_sector_neutral", "residual", "f_ret_1d minus the equal-weight mean f_ret_1d"
            " of the symbol's sector on the date", Demean(RET_1D, sector)),
    Feature("f_vol_sector_neutral", "residual", "f_vol_20d minus the equal-weight mean f_vol_20d"
            " of the symbol's sector on the date", Demean(VOL_20D, sector)),
    Feature("f_mom_sector_neutral", "residual", "f_mom_12_1 minus the equal-weight mean"
            " f_mom_12_1 of the symbol's sector on the date (industry-neutral momentum)",
            Demean(MOM_12_1, sector)),
)

CATALOG: tuple[Feature, ...] = (*PRICE, *VOLUME, *CROSS_SECTIONAL, *RESIDUAL)

# Each day's regular-session bars summed up (aurora.intraday.daily): for day t, the minutes up
# to t's close, or in the pre-close prediction up to the cut (15:45 New York).
INTRADAY = (
    Feature("f_rv_5min_20d", "intraday", "sqrt(mean over 20 sessions of the day's sum of"
            " squared 5-minute log returns): realised daily volatility from intraday prices",
            Sqrt(Mean(intraday_rv_5min, 20))),
    Feature("f_ret_first_30min", "intraday", "ln(close of the first 30 minutes / the day's"
            " first open): the opening half hour's return", intraday_ret_first_30min),
    Feature("f_ret_last_30min", "intraday", "ln(the day's last close / the close 30 minutes"
            " before the day's end): the last half hour's return (up to the cut before the"
            " close)", intraday_ret_last_30min),
    Feature("f_close_vwap_gap", "intraday", "ln(the day's last close / the day's"
            " volume-weighted average price): where the close sits against the day's trading",
            intraday_close_vwap_gap),
    Feature("f_volume_share_last_30min_5d", "intraday", "mean over 5 sessions of the share"
            " of the day's volume traded in its last 30 minutes",
            Mean(intraday_volume_share_last_30min, 5)),
)
