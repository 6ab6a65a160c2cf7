"""Residualized features (8): market and sector neutralisation, idiosyncratic risk.

Market return: `_mkt` on date t is the equal-weight mean of f_ret_1d over the symbols with a
non-null f_ret_1d on t. A per-date regression of returns on it would be degenerate (one
market number per date), so market exposure is a per-symbol trailing beta:

    beta_t = cov(r, m) / var(m) over the 60 sessions t-59..t (bars where both are present)

The market-neutral return on t uses the beta estimated strictly before t (window t-60..t-1),
so the residual is out of sample: eps_t = r_t - beta_{t-1} m_t. Sector neutralisation
subtracts the equal-weight mean of the sector's members on the same date.
"""

from __future__ import annotations

import polars as pl

from aurora.features.ops import cs_demean, rcorr, rcov, rmean, rstd
from aurora.features.spec import FeatureSpec

BETA_WINDOW = 60
_R = pl.col("f_ret_1d")
_M = pl.col("_mkt")


def market_return() -> pl.Expr:
    """Equal-weight mean of f_ret_1d per date (evaluate on the whole panel)."""
    return _R.mean().over("date")


def beta() -> pl.Expr:
    m_paired = pl.when(_R.is_not_null()).then(_M)
    return rcov(_R, _M, BETA_WINDOW) / rstd(m_paired, BETA_WINDOW) ** 2


_BETA = pl.col("_beta")
_EPS = pl.col("_eps")

# Intermediate columns, evaluated in order before the market-stage features; not emitted.
HELPERS: tuple[FeatureSpec, ...] = (
    FeatureSpec("_beta", "residual", BETA_WINDOW, "trailing 60-session market beta",
                beta, stage="market"),
    FeatureSpec("_eps", "residual", BETA_WINDOW + 1, "market-neutral daily return",
                lambda: _R - _BETA.shift(1) * _M, stage="market", windowed=False),
)

SPECS: tuple[FeatureSpec, ...] = (
    FeatureSpec("f_ret_market_neutral", "residual", BETA_WINDOW + 1,
                "f_ret_1d_t - beta_{t-1} x mkt_t, where mkt is the equal-weight market return"
                " and beta_{t-1} the symbol's OLS beta to it over sessions t-60..t-1",
                lambda: _EPS, stage="market", windowed=False),
    FeatureSpec("f_beta_mkt_60d", "residual", BETA_WINDOW,
                "cov(f_ret_1d, mkt) / var(mkt) over sessions t-59..t (trailing market beta)",
                lambda: _BETA, stage="market", windowed=False),
    FeatureSpec("f_resid_ret_20d", "residual", BETA_WINDOW + 1 + 19,
                "20 x mean of f_ret_market_neutral over the last 20 sessions (residual"
                " momentum/reversal, Blitz-Huij-Martens)",
                lambda: 20.0 * rmean(_EPS, 20), stage="market"),
    FeatureSpec("f_resid_vol_20d", "residual", BETA_WINDOW + 1 + 19,
                "sample std of f_ret_market_neutral over the last 20 sessions (idiosyncratic"
                " volatility, Ang et al. 2006)",
                lambda: rstd(_EPS, 20), stage="market"),
    FeatureSpec("f_idio_share_60d", "residual", BETA_WINDOW,
                "1 - corr(f_ret_1d, mkt)^2 over sessions t-59..t: share of return variance not"
                " explained by the market",
                lambda: 1.0 - rcorr(_R, _M, BETA_WINDOW) ** 2, stage="market"),
    FeatureSpec("f_ret_sector_neutral", "residual", 1,
                "f_ret_1d minus the equal-weight mean f_ret_1d of the symbol's sector on the date",
                lambda: cs_demean(_R, "date", "sector"), stage="cross"),
    FeatureSpec("f_vol_sector_neutral", "residual", 20,
                "f_vol_20d minus the equal-weight mean f_vol_20d of the symbol's sector on the"
                " date",
                lambda: cs_demean(pl.col("f_vol_20d"), "date", "sector"), stage="cross"),
    FeatureSpec("f_mom_sector_neutral", "residual", 252,
                "f_mom_12_1 minus the equal-weight mean f_mom_12_1 of the symbol's sector on the"
                " date (industry-neutral momentum)",
                lambda: cs_demean(pl.col("f_mom_12_1"), "date", "sector"), stage="cross"),
)
