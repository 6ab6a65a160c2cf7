"""Stable random streams and per-symbol parameters of the synthetic market.

Every random number is drawn from a numpy Generator seeded by a SHA-256 hash of a key such
as (seed, "symbol", "AAPL", "daily"), never from Python's salted `hash()`. Daily streams are
drawn as one row per session counted from `ORIGIN`, so row k is the same whatever number of
sessions is asked for: numpy fills arrays sequentially in C order, which makes a longer draw
extend a shorter one without changing its prefix.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import numpy as np

ORIGIN = dt.date(2000, 1, 3)
"""First simulated session. Every path starts here, whatever range is requested."""

GICS_SECTORS: tuple[str, ...] = (
    "Communication Services",
    "Consumer Discretionary",
    "Consumer Staples",
    "Energy",
    "Financials",
    "Health Care",
    "Industrials",
    "Information Technology",
    "Materials",
    "Real Estate",
    "Utilities",
)

# Per-symbol parameter ranges (daily units unless stated).
INITIAL_PRICE_RANGE = (10.0, 500.0)  # log-uniform, USD
BETA_RANGE = (0.6, 1.4)  # uniform loading on the market factor
SECTOR_LOADING_RANGE = (0.5, 1.5)  # uniform loading on the sector factor
IDIO_VOL_RANGE = (0.009, 0.024)  # log-uniform long-run idiosyncratic daily volatility
SPLIT_THRESHOLD_RANGE = (150.0, 900.0)  # log-uniform raw price that triggers a forward split
SPLIT_RATIOS = (2, 2, 2, 2, 3, 4)  # new shares per old share, chosen per symbol
DIVIDEND_PAYER_SHARE = 0.7  # share of names paying quarterly cash dividends
DIVIDEND_YIELD_RANGE = (0.005, 0.04)  # uniform annual yield of payers
DOLLAR_VOLUME_RANGE = (2e7, 2e9)  # log-uniform typical daily dollar volume, USD
TRADE_SIZE_RANGE = (3_000.0, 30_000.0)  # log-uniform average dollars per trade

DAILY_COLUMNS = 7  # normal draws per (symbol, session); see `daily_draws`


def stable_seed(*parts: object) -> int:
    """A 128-bit integer from the SHA-256 of the parts' str() joined by '|'."""
    text = "|".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:16], "big")


def stream(*parts: object) -> np.random.Generator:
    """A PCG64 generator keyed by `parts` (e.g. seed, "market")."""
    return np.random.default_rng(stable_seed(*parts))


def _log_uniform(u: float, bounds: tuple[float, float]) -> float:
    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    return float(np.exp(lo + (hi - lo) * u))


@dataclass(frozen=True)
class SymbolParams:
    """Static parameters of one simulated name (daily units)."""

    initial_price: float
    beta: float
    sector_loading: float
    idio_vol: float
    split_threshold: float
    split_ratio: int
    pays_dividend: bool
    dividend_yield: float
    dividend_phase: int
    dollar_volume: float
    trade_size: float


def symbol_params(seed: int, symbol: str) -> SymbolParams:
    """Draw the static parameters of `symbol`; the same for the same (seed, symbol)."""
    u = stream(seed, "symbol", symbol, "params").random(12)
    return SymbolParams(
        initial_price=_log_uniform(u[0], INITIAL_PRICE_RANGE),
        beta=BETA_RANGE[0] + (BETA_RANGE[1] - BETA_RANGE[0]) * float(u[1]),
        sector_loading=SECTOR_LOADING_RANGE[0]
        + (SECTOR_LOADING_RANGE[1] - SECTOR_LOADING_RANGE[0]) * float(u[2]),
        idio_vol=_log_uniform(u[3], IDIO_VOL_RANGE),
        split_threshold=_log_uniform(u[4], SPLIT_THRESHOLD_RANGE),
        split_ratio=SPLIT_RATIOS[int(u[5] * len(SPLIT_RATIOS))],
        pays_dividend=bool(u[6] < DIVIDEND_PAYER_SHARE),
        dividend_yield=DIVIDEND_YIELD_RANGE[0]
        + (DIVIDEND_YIELD_RANGE[1] - DIVIDEND_YIELD_RANGE[0]) * float(u[7]),
        dividend_phase=int(u[8] * 63),
        dollar_volume=_log_uniform(u[9], DOLLAR_VOLUME_RANGE),
        trade_size=_log_uniform(u[10], TRADE_SIZE_RANGE),
    )


def hashed_sector(seed: int, symbol: str) -> str:
    """A GICS sector for a symbol the caller gave no sector for."""
    return GICS_SECTORS[stable_seed(seed, "symbol", symbol, "sector") % len(GICS_SECTORS)]


def daily_draws(seed: int, symbol: str, sessions: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-session draws for `symbol`, row k = session k from ORIGIN.

    Returns (normals (sessions, DAILY_COLUMNS), gamma (sessions,)): normal columns 0 shock,
    1 volume innovation, 2 overnight gap, 3 high extension, 4 low extension, 5 vwap
    position, 6 trade-size noise; gamma ~ Gamma(2, 1) scales the shock into a Student-t(4).
    """
    normals = stream(seed, "symbol", symbol, "daily").standard_normal((sessions, DAILY_COLUMNS))
    scale = stream(seed, "symbol", symbol, "tails").standard_gamma(2.0, sessions)
    return normals, scale


def event_uniforms(seed: int, symbol: str, sessions: int) -> np.ndarray:
    """(sessions, 2) uniforms for halts and missing bars, row k = session k from ORIGIN."""
    return stream(seed, "symbol", symbol, "events").random((sessions, 2))


def factor_normals(seed: int, name: str, sessions: int) -> np.ndarray:
    """(sessions,) standard normals for the market factor or one sector factor."""
    return stream(seed, "factor", name).standard_normal(sessions)
