"""Target portfolios from a day's scores: short pure functions, one cross-section each.

A target is a weight per symbol, a fraction of the capital it is built with: long-only
targets sum to 1; a long-short target has a long leg summing to 1 and a short leg summing
to -1 (dollar neutral, gross 2). Symbols without a score, or that cannot be traded that
day (no price, volatility or volume known yet), get no weight.

- `top_k`: the k best scores, long.
- `top_quantile`: the best of `quantiles` equal-count buckets, long.
- `long_short`: the best bucket long, the worst bucket short.

`weighting` "equal" splits a leg equally; "score" weights a leg by the rank of each name's
score within it (1 for the weakest name kept, n for the strongest; the short leg the other
way round), so a stronger signal holds more without letting one outlier score dominate.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Construction = Literal["top_k", "top_quantile", "long_short"]
Weighting = Literal["equal", "score"]


def target_weights(scores: np.ndarray, construction: Construction, weighting: Weighting, *,
                   k: int = 20, quantiles: int = 5) -> np.ndarray:
    """The target weights (module docstring) for one day's `scores` (NaN: no score or not
    tradable). All zeros when fewer names than the construction needs have a score (fewer
    than k for top_k, fewer than `quantiles` otherwise)."""
    weights = np.zeros(len(scores))
    valid = np.flatnonzero(~np.isnan(scores))
    if construction == "top_k":
        if len(valid) < k or k < 1:
            return weights
        longs, shorts = _best(scores, valid, k), np.array([], dtype=int)
    else:
        if len(valid) < quantiles:
            return weights
        size = len(valid) // quantiles
        longs = _best(scores, valid, size)
        shorts = (_worst(scores, valid, size) if construction == "long_short"
                  else np.array([], dtype=int))
    weights[longs] = _leg(scores[longs], weighting)
    if len(shorts):
        weights[shorts] = -_leg(-scores[shorts], weighting)
    return weights


def _best(scores: np.ndarray, valid: np.ndarray, n: int) -> np.ndarray:
    """The `n` valid positions with the highest scores (ties: the earlier position)."""
    order = valid[np.argsort(-scores[valid], kind="stable")]
    return order[:n]


def _worst(scores: np.ndarray, valid: np.ndarray, n: int) -> np.ndarray:
    order = valid[np.argsort(scores[valid], kind="stable")]
    return order[:n]


def _leg(strength: np.ndarray, weighting: Weighting) -> np.ndarray:
    """Weights summing to 1 over one leg; `strength` higher = more weight when by score."""
    if weighting == "equal" or len(strength) == 1:
        return np.full(len(strength), 1.0 / len(strength))
    ranks = np.empty(len(strength))
    ranks[np.argsort(strength, kind="stable")] = np.arange(1, len(strength) + 1)
    return ranks / ranks.sum()
