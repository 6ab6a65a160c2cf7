"""Return model of the synthetic market: GARCH factors and idiosyncratic returns.

Daily log return of name i on session t:

    r[t, i] = beta_i * (MARKET_DRIFT + m[t]) + g_i * s[t, sector(i)] + e[t, i]

* m: market factor, Gaussian shocks with GARCH(1,1) variance, long-run vol MARKET_VOL.
* s: one factor per sector, Gaussian shocks with GARCH(1,1) variance, long-run SECTOR_VOL.
* e: idiosyncratic return = GARCH(1,1)-scaled Student-t(4) shock (unit variance,
  clipped at +-SHOCK_CLIP) plus the PLANTED REVERSAL:

      e[t, i] = sigma[t, i] * z[t, i] - REVERSAL_KAPPA * sum(e[t-REVERSAL_WINDOW .. t-1, i])

  The reversal makes a 5-day reversal signal (minus the past 5-day return) predict the next
  5-day return with a cross-sectional rank IC of about 0.07 (see docs/synthetic-market.md).
"""

from __future__ import annotations

import numpy as np

MARKET_VOL = 0.010
MARKET_DRIFT = 0.0003  # daily, about 7.5% a year in log terms for beta 1
SECTOR_VOL = 0.005
FACTOR_GARCH = (0.08, 0.90)  # (alpha, beta) of the market and sector variances
IDIO_GARCH = (0.08, 0.90)  # (alpha, beta) of the idiosyncratic variance
SHOCK_CLIP = 10.0  # standardised shocks beyond +-10 sigma are clipped
RETURN_CLIP = 0.75  # no daily log return beyond +-75%
REVERSAL_KAPPA = 0.035
REVERSAL_WINDOW = 5


def student_t_shocks(normal: np.ndarray, gamma2: np.ndarray) -> np.ndarray:
    """Unit-variance Student-t(4) shocks, clipped at +-SHOCK_CLIP.

    With z ~ N(0, 1) and G ~ Gamma(2, 1), chi2_4 = 2 G and t_4 = z / sqrt(chi2_4 / 4)
    = z / sqrt(G / 2); Var(t_4) = 2, hence the division by sqrt(2): shock = z / sqrt(G).
    """
    return np.clip(normal / np.sqrt(gamma2), -SHOCK_CLIP, SHOCK_CLIP)


def garch_returns(
    shocks: np.ndarray,
    vol: np.ndarray,
    garch: tuple[float, float],
    kappa: float = 0.0,
    window: int = REVERSAL_WINDOW,
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate columns of GARCH(1,1) returns with an optional short-term reversal.

    shocks: (T, k) unit-variance shocks, row t = session t from ORIGIN. vol: (k,) long-run
    daily volatility. Returns (returns, sigma), both (T, k): returns[t] = sigma[t] * shocks[t]
    - kappa * sum(returns[t-window .. t-1]); sigma[t]^2 = omega + alpha * eps[t-1]^2 +
    beta * sigma[t-1]^2 where eps is the GARCH innovation (sigma * shock, reversal excluded).
    Columns are independent, so any subset of columns gives the same numbers.
    """
    alpha, beta = garch
    vol = np.asarray(vol, dtype=np.float64)
    omega = vol**2 * (1.0 - alpha - beta)
    sig2 = vol**2
    eps2 = vol**2
    rolling = np.zeros_like(vol)
    out = np.empty_like(shocks, dtype=np.float64)
    sigma = np.empty_like(shocks, dtype=np.float64)
    for t in range(shocks.shape[0]):
        sig2 = omega + alpha * eps2 + beta * sig2
        sig = np.sqrt(sig2)
        eps = sig * shocks[t]
        ret = eps - kappa * rolling if kappa else eps
        out[t] = ret
        sigma[t] = sig
        eps2 = eps * eps
        if kappa:
            rolling += ret
            if t >= window:
                rolling -= out[t - window]
    return out, sigma
