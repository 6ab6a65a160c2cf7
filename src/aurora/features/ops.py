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
from collections.abc import Callable, Sequence

import bottleneck as bn
import numpy as np

MIN_COVERAGE = 0.8
NAN = np.nan

Groups = Sequence[np.ndarray]  # row-index arrays, one per group (e.g. per sector)


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


def paired(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x and y, each NaN where the other is, so rolling moments use the same bars."""
    both = ~(np.isnan(x) | np.isnan(y))
    return where(both, x), where(both, y)


def rcov(x: np.ndarray, y: np.ndarray, window: int) -> np.ndarray:
    """Sample covariance (ddof=1) over the bars where both are present."""
    xp, yp = paired(x, y)
    n = rcount(xp, window)
    raw = rmean(xp * yp, window) - rmean(xp, window) * rmean(yp, window)
    with np.errstate(divide="ignore", invalid="ignore"):
        return raw * n / (n - 1.0)


def rcorr(x: np.ndarray, y: np.ndarray, window: int) -> np.ndarray:
    """Pearson correlation over the bars where both are present."""
    xp, yp = paired(x, y)
    with np.errstate(divide="ignore", invalid="ignore"):
        return rcov(xp, yp, window) / (rstd(xp, window) * rstd(yp, window))


def safe_log(x: np.ndarray) -> np.ndarray:
    """Natural log; NaN for non-positive or missing input instead of -inf."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return where(x > 0, np.log(x))


def ratio(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x / y without floating-point warnings (0/0 is NaN, x/0 is +-inf: masked later)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return x / y


# ---- cross-sectional kernels (axis 0: symbols of one date) ----------------------------


_TOP = np.uint64(1 << 63)
_ALL = np.uint64(2**64 - 1)


def _sort_order(xt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of xt (dates x symbols), the column order that sorts the row ascending, NaN
    last, and the sorted values. Exact: one SIMD sort of order-preserving uint64 keys of the
    values whose low bits are replaced by the column index; a row where that truncation
    could misorder two values (they agree to ~1e-12) is re-sorted with argsort."""
    cols = xt.shape[1]
    bits = np.uint64(max(1, (cols - 1).bit_length()))
    u = xt.view(np.uint64)
    keys = np.negative(u >> np.uint64(63))  # all ones for negative values, else 0
    keys |= _TOP
    keys ^= u  # monotone in the float's value
    keys[np.isnan(xt)] = _ALL
    keys >>= bits
    keys <<= bits
    keys |= np.arange(cols, dtype=np.uint64)[None, :]
    keys.sort(axis=1)
    keys &= (np.uint64(1) << bits) - np.uint64(1)
    order = keys.view(np.intp) if keys.dtype.itemsize == np.dtype(np.intp).itemsize else \
        keys.astype(np.intp)
    s = np.take_along_axis(xt, order, axis=1)
    bad = np.flatnonzero((s[:, 1:] < s[:, :-1]).any(axis=1))
    if bad.size:
        order[bad] = np.argsort(xt[bad], axis=1)
        s[bad] = np.take_along_axis(xt[bad], order[bad], axis=1)
    return order, s


def _sorted_ranks(s: np.ndarray) -> np.ndarray:
    """The average 1-based rank of each position of rows of sorted values: j + 1, except
    inside a tie group (equal neighbours; NaNs, sorted last, never tie), whose positions
    first..last all get (first + last) / 2 + 1. Costs O(cells) plus O(tied cells)."""
    cols = s.shape[1]
    rank = np.broadcast_to(np.arange(1.0, cols + 1.0), s.shape)
    eq = s[:, 1:] == s[:, :-1]
    r, j = np.nonzero(eq)  # position j ties with j + 1, row-major order
    if r.size == 0:
        return rank
    rank = np.array(rank)
    new_run = np.ones(r.size, dtype=bool)
    new_run[1:] = (r[1:] != r[:-1]) | (j[1:] != j[:-1] + 1)
    run = np.cumsum(new_run) - 1
    heads = np.flatnonzero(new_run)
    tails = np.append(heads[1:], r.size) - 1
    first = j[heads].astype(np.float64)
    last = j[tails].astype(np.float64) + 1.0
    average = (first + last) * 0.5 + 1.0
    rank[r, j] = average[run]
    rank[r[tails], j[tails] + 1] = average
    return rank


def _pct_rank(x: np.ndarray) -> np.ndarray:
    """Average rank / count of the non-missing values in each column, in (0, 1].

    Returns the transpose of a date-major array (a view): pass x as the transpose of a
    date-major (C-contiguous) block and no copy is made either way."""
    xt = np.ascontiguousarray(x.T)  # one date per row: the sort runs on contiguous memory
    rows, cols = xt.shape
    order, s = _sort_order(xt)
    rank = _sorted_ranks(s)
    del s
    present = ~np.isnan(xt)
    count = present.sum(axis=1)[:, None].astype(np.float64)
    ranked = np.empty_like(xt)
    flat = order + (np.arange(rows, dtype=np.intp) * cols)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        ranked.ravel()[flat.ravel()] = (rank / count).ravel()
    np.putmask(ranked, ~present, NAN)
    return ranked.T


def _by_group(kernel: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
              groups: Groups | None) -> np.ndarray:
    if groups is None:
        return kernel(x)
    out = np.full_like(x, NAN)
    for rows in groups:  # one pass per group (sector), each vectorised over its rows x dates
        out[rows] = kernel(x[rows])
    return out


def cs_pct_rank(x: np.ndarray, groups: Groups | None = None) -> np.ndarray:
    """Percentile rank per date (within each group): average rank / count of non-missing
    values, in (0, 1]. Same convention as pandas `rank(pct=True)`; ties share the average."""
    return _by_group(_pct_rank, x, groups)


def cs_zscore(x: np.ndarray, groups: Groups | None = None) -> np.ndarray:
    """(x - mean) / std (ddof=1) per date; NaN when the std is 0 or undefined."""
    def kernel(v: np.ndarray) -> np.ndarray:
        sd = bn.nanstd(v, axis=0, ddof=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(sd > 0, (v - bn.nanmean(v, axis=0)) / sd, NAN)
    return _by_group(kernel, x, groups)


def cs_demean(x: np.ndarray, groups: Groups | None = None) -> np.ndarray:
    """x minus the equal-weight mean of the non-missing values per date (within group)."""
    return _by_group(lambda v: v - bn.nanmean(v, axis=0), x, groups)
