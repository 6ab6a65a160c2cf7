"""Numeric building blocks of the features, on wide (symbols x sessions) float64 arrays.

NaN means missing. Time-series kernels run along axis 1, one symbol per row, with the
bottleneck moving-window functions: causal (the value at t reads only columns <= t of its
own row) and NaN-aware. Rolling statistics skip missing bars and are NaN unless at least
`MIN_COVERAGE` of the window is present (so one missing bar does not blank a 60-session
statistic). Cross-sectional kernels run along axis 0 (one column = one date) over the
symbols with a non-missing value, optionally within groups of rows (sectors).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import bottleneck as bn
import numpy as np

from aurora.features import kernels

MIN_COVERAGE = 0.8
NAN = np.nan

Groups = np.ndarray  # int64 group code per row (e.g. its sector): 0, 1, ..; -1: no group


def min_obs(window: int) -> int:
    """The fewest non-missing observations a rolling window of `window` sessions accepts."""
    return max(1, math.ceil(MIN_COVERAGE * window))


def _move(fn: Callable[..., np.ndarray], x: np.ndarray, window: int, min_count: int,
          **kw: object) -> np.ndarray:
    """Apply a bottleneck moving-window function along axis 1, also when the history is
    shorter than the window (bottleneck refuses that; NaN padding on the left is neutral)."""
    short = window - x.shape[1]
    if short <= 0:
        return fn(x, window, min_count=min_count, axis=1, **kw)
    pad = np.full((x.shape[0], short), NAN)
    return fn(np.hstack([pad, x]), window, min_count=min_count, axis=1, **kw)[:, short:]


def rmean(x: np.ndarray, window: int) -> np.ndarray:
    return _move(bn.move_mean, x, window, min_obs(window))


def rstd(x: np.ndarray, window: int) -> np.ndarray:
    """Sample standard deviation (ddof=1) over the window."""
    return _move(bn.move_std, x, window, min_obs(window), ddof=1)


def rmax(x: np.ndarray, window: int) -> np.ndarray:
    return _move(bn.move_max, x, window, min_obs(window))


def rmin(x: np.ndarray, window: int) -> np.ndarray:
    return _move(bn.move_min, x, window, min_obs(window))


def rmedian(x: np.ndarray, window: int, min_count: int) -> np.ndarray:
    return _move(bn.move_median, x, window, min_count)


def rcount(x: np.ndarray, window: int) -> np.ndarray:
    """Number of non-missing values in the window (0 allowed)."""
    return _move(bn.move_sum, (~np.isnan(x)).astype(np.float64), window, 1)


def shift(x: np.ndarray, k: int) -> np.ndarray:
    """x_{t-k} along axis 1 (NaN for the first k sessions)."""
    out = np.full_like(x, NAN)
    if k < x.shape[1]:
        out[:, k:] = x[:, : x.shape[1] - k]
    return out


def where(cond: np.ndarray, x: np.ndarray | float, y: np.ndarray | float = NAN) -> np.ndarray:
    return np.where(cond, x, y)


def _comoment(x: np.ndarray, y: np.ndarray, window: int, kind: int) -> np.ndarray:
    out = np.empty(np.broadcast_shapes(x.shape, y.shape))
    xb, yb = np.broadcast_to(x, out.shape), np.broadcast_to(y, out.shape)
    kernels.rolling_comoment(xb, yb, window, min_obs(window), kind, out)
    return out


def rcov(x: np.ndarray, y: np.ndarray, window: int) -> np.ndarray:
    """Sample covariance (ddof=1) over the bars where both are present."""
    return _comoment(x, y, window, kernels.COV)


def rcorr(x: np.ndarray, y: np.ndarray, window: int) -> np.ndarray:
    """Pearson correlation over the bars where both are present (NaN when either has no
    variance in the window)."""
    return _comoment(x, y, window, kernels.CORR)


def rbeta(x: np.ndarray, y: np.ndarray, window: int) -> np.ndarray:
    """OLS slope of x on y, cov(x, y) / var(y), over the bars where both are present (NaN
    when y has no variance in the window)."""
    return _comoment(x, y, window, kernels.BETA)


def safe_log(x: np.ndarray) -> np.ndarray:
    """Natural log; NaN for non-positive or missing input instead of -inf."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return where(x > 0, np.log(x))


def ratio(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x / y without floating-point warnings (0/0 is NaN, x/0 is +-inf: masked later)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return x / y


# ---- cross-sectional kernels (axis 0: symbols of one date) ----------------------------


def _codes(n: int, groups: Groups | None) -> tuple[np.ndarray, int]:
    """Group code per row (-1: in no group) and the number of groups (1 when ungrouped)."""
    if groups is None:
        return np.zeros(n, dtype=np.int64), 1
    codes = np.asarray(groups, dtype=np.int64)
    if codes.shape != (n,):
        raise ValueError(f"groups: expected one code per row ({n}), got shape {codes.shape}")
    return codes.copy(), int(codes.max(initial=-1)) + 1


def _date_major(x: np.ndarray) -> np.ndarray:
    """x (symbols x dates) as a C-contiguous (dates x symbols) array: no copy when x is the
    transpose of one, as the build passes it."""
    return np.ascontiguousarray(x.T)


def cs_pct_rank(x: np.ndarray, groups: Groups | None = None) -> np.ndarray:
    """Percentile rank per date (within each group): average rank / count of non-missing
    values, in (0, 1]. Same convention as pandas `rank(pct=True)`; ties share the average.
    Rows in no group are NaN.

    One numpy sort per date of 64-bit keys ordering (group, value, row), then one compiled
    pass for ties and counts (`kernels.rank_keys`, `kernels.ranks_from_keys`: exact).
    Returns the transpose of a date-major array (see `_date_major`)."""
    xt = _date_major(x)
    codes, n_groups = _codes(x.shape[0], groups)
    in_none = codes < 0
    codes[in_none] = n_groups  # ranked as a group of their own, then blanked
    group_bits = 0 if groups is None else int(n_groups).bit_length()
    bits = max(1, (xt.shape[1] - 1).bit_length())
    keys = np.empty(xt.shape, dtype=np.uint64)
    kernels.rank_keys(xt, codes, group_bits, bits, keys)
    keys.view(np.int64).sort(axis=1)  # see kernels.rank_keys
    ranked = np.empty_like(xt)
    kernels.ranks_from_keys(xt, keys, group_bits, bits, ranked)
    if in_none.any():
        ranked[:, in_none] = NAN
    return ranked.T


def _moments(x: np.ndarray, groups: Groups | None, standardize: bool) -> np.ndarray:
    xt = _date_major(x)
    codes, n_groups = _codes(x.shape[0], groups)
    out = np.empty_like(xt)
    kernels.group_moments(xt, codes, n_groups, standardize, out)
    return out.T


def cs_zscore(x: np.ndarray, groups: Groups | None = None) -> np.ndarray:
    """(x - mean) / std (ddof=1) per date (within each group); NaN when the std is 0 or
    undefined. Returns the transpose of a date-major array (see `_date_major`)."""
    return _moments(x, groups, standardize=True)


def cs_demean(x: np.ndarray, groups: Groups | None = None) -> np.ndarray:
    """x minus the equal-weight mean of the non-missing values per date (within group).
    Returns the transpose of a date-major array (see `_date_major`)."""
    return _moments(x, groups, standardize=False)
