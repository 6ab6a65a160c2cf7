"""Simulate one block of names from ORIGIN to the last requested session.

Arrays are (sessions, names) with row t = session t counted from ORIGIN; only the rows of
the requested window are turned into bars. Names in a block do not interact, so the result
for a name is the same whatever block it is simulated in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from aurora_testbed.synthetic.bars import build_bars, log_dollar_volume
from aurora_testbed.synthetic.events import (
    ALWAYS_TRADED,
    Splits,
    absence_masks,
    dividend_days,
    plant_splits,
)
from aurora_testbed.synthetic.factors import (
    IDIO_GARCH,
    MARKET_DRIFT,
    MARKET_VOL,
    RETURN_CLIP,
    REVERSAL_KAPPA,
    REVERSAL_WINDOW,
    SECTOR_VOL,
    garch_returns,
    student_t_shocks,
)
from aurora_testbed.synthetic.streams import daily_draws, event_uniforms, symbol_params


@dataclass(frozen=True)
class BlockResult:
    """Window arrays (W, k) of one block; session indices count from ORIGIN."""

    bars: dict[str, np.ndarray]
    halted: np.ndarray
    missing: np.ndarray
    splits: Splits
    dividend_session: np.ndarray
    dividend_column: np.ndarray
    dividend_cash: np.ndarray


def simulate_block(
    seed: int,
    names: list[str],
    factor_column: np.ndarray,
    factors: Mapping[str, np.ndarray],
    first: int,
    force_bar: Mapping[int, int],
) -> BlockResult:
    """Simulate `names` (factor_column: column of each name's sector in `factors`).

    factors: "returns" and "sigma" (T, 1 + sectors), column 0 the market. first: index of
    the first window session. force_bar: column -> session index that must have a bar.
    """
    n_sessions, k = factors["returns"].shape[0], len(names)
    params = [symbol_params(seed, s) for s in names]

    def param(field: str) -> np.ndarray:
        return np.array([float(getattr(p, field)) for p in params])

    beta, gamma, idio_vol = param("beta"), param("sector_loading"), param("idio_vol")
    shocks_t = np.empty((k, n_sessions))
    innovations_t = np.empty((k, n_sessions))
    noise_t = np.empty((k, 5, n_sessions - first))
    uniforms_t = np.empty((k, 2, n_sessions))
    for j, name in enumerate(names):  # symbol-major fill: contiguous writes
        normals, scale = daily_draws(seed, name, n_sessions)
        shocks_t[j] = student_t_shocks(normals[:, 0], scale)
        innovations_t[j] = normals[:, 1]
        noise_t[j] = normals[first:, 2:7].T
        uniforms_t[j] = event_uniforms(seed, name, n_sessions).T
    shocks = np.ascontiguousarray(shocks_t.T)
    del shocks_t
    idio, idio_sigma = garch_returns(shocks, idio_vol, IDIO_GARCH, REVERSAL_KAPPA, REVERSAL_WINDOW)
    del shocks
    market = factors["returns"][:, :1]
    returns = beta * (MARKET_DRIFT + market) + gamma * factors["returns"][:, factor_column] + idio
    np.clip(returns, -RETURN_CLIP, RETURN_CLIP, out=returns)
    del idio

    halted, missing = absence_masks(np.ascontiguousarray(uniforms_t.transpose(2, 1, 0)))
    for column, session in force_bar.items():
        halted[session, column] = missing[session, column] = False
    always = [j for j, name in enumerate(names) if name in ALWAYS_TRADED]
    halted[:, always] = missing[:, always] = False
    absent = halted | missing
    phase = np.array([p.dividend_phase if p.pays_dividend else -1 for p in params])
    quarterly = param("dividend_yield") / 4.0
    paying = dividend_days(absent, phase)
    steps = returns + np.where(paying, np.log1p(-quarterly), 0.0)
    log_unsplit = np.log(param("initial_price")) + np.cumsum(steps, axis=0)
    del steps
    log_raw, splits = plant_splits(
        log_unsplit, absent | paying, param("split_threshold"), param("split_ratio")
    )
    del log_unsplit
    closes = np.exp(log_raw)
    del log_raw
    previous = np.empty_like(closes)
    previous[0] = param("initial_price")
    previous[1:] = closes[:-1]

    div_t, div_col = np.nonzero(paying)
    div_cash = np.maximum(np.round(quarterly[div_col] * previous[div_t, div_col], 2), 0.01)
    open_multiplier = np.where(paying[first:], 1.0 - quarterly, 1.0)
    inside = splits.session >= first
    open_multiplier[splits.session[inside] - first, splits.column[inside]] = (
        splits.old_rate[inside] / splits.new_rate[inside]
    )

    total_vol = np.sqrt(idio_vol**2 + (beta * MARKET_VOL) ** 2 + (gamma * SECTOR_VOL) ** 2)
    innovations = np.ascontiguousarray(innovations_t.T)
    del innovations_t
    log_dv = log_dollar_volume(innovations, returns, total_vol, param("dollar_volume"))[first:]
    del innovations
    f_sigma = factors["sigma"][first:]
    sigma = np.sqrt(
        idio_sigma[first:] ** 2
        + (beta * f_sigma[:, :1]) ** 2
        + (gamma * f_sigma[:, factor_column]) ** 2
    )
    bars = build_bars(
        previous_close=previous[first:],
        close=closes[first:],
        open_multiplier=open_multiplier,
        returns=returns[first:],
        sigma=sigma,
        noise=noise_t.transpose(2, 1, 0),
        log_dollar_volume=log_dv,
        trade_size=param("trade_size"),
    )
    keep = div_t >= first
    return BlockResult(
        bars=bars,
        halted=halted[first:],
        missing=missing[first:],
        splits=Splits(
            splits.session[inside],
            splits.column[inside],
            splits.old_rate[inside],
            splits.new_rate[inside],
        ),
        dividend_session=div_t[keep],
        dividend_column=div_col[keep],
        dividend_cash=div_cash[keep],
    )
