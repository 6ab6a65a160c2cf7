"""Daily bars (OHLC, vwap, volume, trade count) from the simulated raw closes.

All arrays are (sessions, names). Conventions:

* open = previous raw close * open multiplier * exp(g), where the multiplier is
  old_rate / new_rate on a split ex session, 1 - q on a dividend ex session (q the quarterly
  yield) and 1 otherwise, and the overnight log gap g = OVERNIGHT_SHARE * r
  + GAP_NOISE * sigma * n (clipped so |g| <= |r| + 3 sigma);
* high = max(open, close) * exp(RANGE_SCALE * sigma * |n|), low likewise below min(open, close);
* vwap = VWAP_TYPICAL_WEIGHT * (high + low + close) / 3 + rest * a random point in [low, high];
* prices are rounded to cents (to 1/100 cent below $1) after which high >= max(open, close),
  low <= min(open, close), low <= vwap <= high and low > 0 are enforced;
* log dollar volume = log(level) + VOLUME_PRICE_ELASTICITY * cumulative log return
  + AR(1) component (phi VOLUME_AR_PHI, stationary sd VOLUME_AR_SD)
  + VOLUME_ABS_RETURN_K * (|r| / long-run vol - E|N(0,1)|);
  volume (shares) = round(dollar volume / vwap), at least 100;
* trade_count = round(dollar volume / (trade size * exp(TRADE_SIZE_NOISE * n))), at least 1.
"""

from __future__ import annotations

import numpy as np

OVERNIGHT_SHARE = 0.3
GAP_NOISE = 0.25
RANGE_SCALE = 0.6
VWAP_TYPICAL_WEIGHT = 0.6
VOLUME_AR_PHI = 0.9
VOLUME_AR_SD = 0.3
VOLUME_ABS_RETURN_K = 0.25
VOLUME_PRICE_ELASTICITY = 0.5
TRADE_SIZE_NOISE = 0.15
MIN_VOLUME = 100.0
_MEAN_ABS_NORMAL = float(np.sqrt(2.0 / np.pi))


def round_price(x: np.ndarray) -> np.ndarray:
    """Round to cents at or above $1, to 1/100 cent below (as sub-dollar stocks trade)."""
    return np.where(x >= 1.0, np.round(x, 2), np.round(x, 4))


def log_dollar_volume(
    innovations: np.ndarray, returns: np.ndarray, total_vol: np.ndarray, level: np.ndarray
) -> np.ndarray:
    """Log dollar volume (T, k) from ORIGIN; row t depends only on rows <= t."""
    persistent = np.empty_like(innovations)
    scale = VOLUME_AR_SD * np.sqrt(1.0 - VOLUME_AR_PHI**2)
    persistent[0] = VOLUME_AR_SD * innovations[0]
    for t in range(1, innovations.shape[0]):
        persistent[t] = VOLUME_AR_PHI * persistent[t - 1] + scale * innovations[t]
    persistent += np.log(level)
    persistent += VOLUME_PRICE_ELASTICITY * np.cumsum(returns, axis=0)
    persistent += VOLUME_ABS_RETURN_K * (np.abs(returns) / total_vol - _MEAN_ABS_NORMAL)
    return persistent


def build_bars(
    *,
    previous_close: np.ndarray,
    close: np.ndarray,
    open_multiplier: np.ndarray,
    returns: np.ndarray,
    sigma: np.ndarray,
    noise: np.ndarray,
    log_dollar_volume: np.ndarray,
    trade_size: np.ndarray,
) -> dict[str, np.ndarray]:
    """OHLC, vwap, volume and trade_count arrays (T, k) for the requested window.

    previous_close: raw close of the session before each row (unrounded model price);
    open_multiplier: see the module doc; sigma: conditional daily vol; noise: (T, 5, k) normals
    (gap, high, low, vwap position, trade-size noise); trade_size: (k,) dollars per trade.
    """
    gap_noise, high_noise, low_noise, vwap_noise, trade_noise = (noise[:, j, :] for j in range(5))
    bound = np.abs(returns) + 3.0 * sigma
    gap = np.clip(OVERNIGHT_SHARE * returns + GAP_NOISE * sigma * gap_noise, -bound, bound)
    opened = round_price(previous_close * open_multiplier * np.exp(gap))
    closed = round_price(close)
    top = np.maximum(opened, closed)
    bottom = np.minimum(opened, closed)
    high = np.maximum(round_price(top * np.exp(RANGE_SCALE * sigma * np.abs(high_noise))), top)
    low = np.minimum(round_price(bottom * np.exp(-RANGE_SCALE * sigma * np.abs(low_noise))), bottom)
    low = np.maximum(low, 0.0001)
    position = 0.5 + 0.5 * np.tanh(vwap_noise)
    vwap = VWAP_TYPICAL_WEIGHT * (high + low + closed) / 3.0 + (1.0 - VWAP_TYPICAL_WEIGHT) * (
        low + position * (high - low)
    )
    vwap = np.clip(np.round(vwap, 4), low, high)
    dollars = np.exp(log_dollar_volume)
    volume = np.maximum(np.round(dollars / vwap), MIN_VOLUME)
    trades = np.maximum(
        np.round(dollars / (trade_size * np.exp(TRADE_SIZE_NOISE * trade_noise))), 1
    )
    return {
        "open": opened,
        "high": high,
        "low": low,
        "close": closed,
        "vwap": vwap,
        "volume": volume,
        "trade_count": trades.astype(np.int64),
    }
