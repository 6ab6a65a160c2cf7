"""Residualized features (8): market and sector neutralisation, idiosyncratic risk.

Market return: `_mkt` on date t is the equal-weight mean of f_ret_1d over the symbols with a
present f_ret_1d on t. A per-date regression of returns on it would be degenerate (one
market number per date), so market exposure is a per-symbol trailing beta:

    beta_t = cov(r, m) / var(m) over the 60 sessions t-59..t (bars where both are present)

The market-neutral return on t uses the beta estimated strictly before t (window t-60..t-1),
so the residual is out of sample: eps_t = r_t - beta_{t-1} m_t. Sector neutralisation
subtracts the equal-weight mean of the sector's members on the same date.
"""

from __future__ import annotations

import bottleneck as bn
import numpy as np

from aurora.features.ops import cs_demean, rbeta, rcorr, rmean, rstd, shift
from aurora.features.spec import FeatureSpec
from aurora.features.wide import WidePanel

BETA_WINDOW = 60


def market_return(returns_by_date: np.ndarray) -> np.ndarray:
    """Equal-weight mean of f_ret_1d per date (NaN when no symbol has one), from the
    (dates x symbols) matrix of masked daily returns."""
    return bn.nanmean(returns_by_date, axis=1)


def beta(w: WidePanel) -> np.ndarray:
    return rbeta(w["f_ret_1d"], w["_mkt"], BETA_WINDOW)


# Intermediate arrays, evaluated in order after `_mkt` (= market_return, a per-date mean of
# already masked returns) and before the market-stage features; not emitted.
HELPERS: tuple[FeatureSpec, ...] = (
    FeatureSpec("_beta", "residual", BETA_WINDOW, "trailing 60-session market beta",
                beta, stage="market"),
    FeatureSpec("_eps", "residual", BETA_WINDOW + 1, "market-neutral daily return",
                lambda w: w["f_ret_1d"] - shift(w["_beta"], 1) * w["_mkt"], stage="market"),
)

SPECS: tuple[FeatureSpec, ...] = (
    FeatureSpec("f_ret_market_neutral", "residual", BETA_WINDOW + 1,
                "f_ret_1d_t - beta_{t-1} x mkt_t, where mkt is the equal-weight market return"
                " and beta_{t-1} the symbol's OLS beta to it over sessions t-60..t-1",
                lambda w: w["_eps"], stage="market"),
    FeatureSpec("f_beta_mkt_60d", "residual", BETA_WINDOW,
                "cov(f_ret_1d, mkt) / var(mkt) over sessions t-59..t (trailing market beta)",
                lambda w: w["_beta"], stage="market"),
    FeatureSpec("f_resid_ret_20d", "residual", BETA_WINDOW + 1 + 19,
                "20 x mean of f_ret_market_neutral over the last 20 sessions (residual"
                " momentum/reversal, Blitz-Huij-Martens)",
                lambda w: 20.0 * rmean(w["_eps"], 20), stage="market"),
    FeatureSpec("f_resid_vol_20d", "residual", BETA_WINDOW + 1 + 19,
                "sample std of f_ret_market_neutral over the last 20 sessions (idiosyncratic"
                " volatility, Ang et al. 2006)",
                lambda w: rstd(w["_eps"], 20), stage="market"),
    FeatureSpec("f_idio_share_60d", "residual", BETA_WINDOW,
                "1 - corr(f_ret_1d, mkt)^2 over sessions t-59..t: share of return variance not"
                " explained by the market",
                lambda w: 1.0 - rcorr(w["f_ret_1d"], w["_mkt"], BETA_WINDOW) ** 2,
                stage="market"),
    FeatureSpec("f_ret_sector_neutral", "residual", 1,
                "f_ret_1d minus the equal-weight mean f_ret_1d of the symbol's sector on the date",
                lambda w: cs_demean(w["f_ret_1d"], w.sector_codes), stage="cross"),
    FeatureSpec("f_vol_sector_neutral", "residual", 20,
                "f_vol_20d minus the equal-weight mean f_vol_20d of the symbol's sector on the"
                " date",
                lambda w: cs_demean(w["f_vol_20d"], w.sector_codes), stage="cross"),
    FeatureSpec("f_mom_sector_neutral", "residual", 252,
                "f_mom_12_1 minus the equal-weight mean f_mom_12_1 of the symbol's sector on the"
                " date (industry-neutral momentum)",
                lambda w: cs_demean(w["f_mom_12_1"], w.sector_codes), stage="cross"),
)
