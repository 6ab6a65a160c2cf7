"""Numeric building blocks of the features, on wide (symbols x sessions) float64 arrays.

NaN means missing. Time-series kernels run along axis 1 (one symbol per row), causal (the
value at t reads only columns <= t of its row); rolling statistics skip missing bars and are
NaN unless at least `MIN_COVERAGE` of the window is present. Cross-sectional kernels run
along axis 0 (one date) over the symbols present, optionally within groups (sectors).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import bottleneck as bn
import numpy as np

MIN_COVERAGE = 0.8
NAN = np.nan

Groups = np.ndarray  # int64 group code per row (e.g. its sector): 0, 1, ..; -1: no group


def min_obs(window: int) -> int:
    """The fewest non-missing observations a rolling window of `window` sessions accepts."""
    return max(1, math.ceil(MIN_COVERAGE * window))


def move(fn: Callable[..., np.ndarray], x: np.ndarray, window: int, min_count: int,
         **kw: object) -> np.ndarray:
    """Apply a bottleneck moving-window function along axis 1, also when the history is
    shorter than the window (bottleneck refuses that; NaN padding on the left is neutral)."""
    short = window - x.shape[1]
    if short <= 0:
        return fn(x, window, min_count=min_count, axis=1, **kw)
    pad = np.full((x.shape[0], short), NAN)
    return fn(np.hstack([pad, x]), window, min_count=min_count, axis=1, **kw)[:, short:]


def nanquantile(v: np.ndarray, q: float | list[float], axis: int) -> np.ndarray:
    """`np.nanquantile(v, q, axis, keepdims=True)`, NaN for a slice with no value, without
    numpy's all-NaN warning (filtering warnings is process-wide, unsafe on the build's
    threads)."""
    empty = np.isnan(v).all(axis=axis, keepdims=True)
    return np.where(empty, NAN, np.nanquantile(np.where(empty, 0.0, v), q, axis=axis,
                                               keepdims=True))


def shift(x: np.ndarray, k: int) -> np.ndarray:
    """x_{t-k} along axis 1 (NaN for the first k sessions)."""
    out = np.full_like(x, NAN)
    if k < x.shape[1]:
        out[:, k:] = x[:, : x.shape[1] - k]
    return out


class _Pairs:
    """Running sums over the bars where both x and y are present, of the values minus each
    row's first present pair: the shift keeps the sums small, so sum(ab) - sum(a) sum(b) / n
    does not cancel catastrophically for series far from 0. `n` is NaN where fewer than
    max(min_obs, 2) pairs are present."""

    def __init__(self, x: np.ndarray, y: np.ndarray, window: int) -> None:
        x, y = np.broadcast_arrays(x, y)
        both = ~(np.isnan(x) | np.isnan(y))
        first = both.argmax(axis=1)[:, None]
        rows = np.arange(x.shape[0])[:, None]
        self.window = window
        self.n = self.sum(both.astype(np.float64))
        self.n[self.n < max(2, min_obs(window))] = NAN
        a, b = np.where(both, x - x[rows, first], NAN), np.where(both, y - y[rows, first], NAN)
        self.terms = {"x": (a, self.sum(a)), "y": (b, self.sum(b))}

    def sum(self, v: np.ndarray) -> np.ndarray:
        return move(bn.move_sum, v, self.window, 1)

    def comoment(self, u: str, v: str) -> np.ndarray:
        """Sum of (u - mean u)(v - mean v) over each window; u and v are "x" or "y"."""
        (a, sa), (b, sb) = self.terms[u], self.terms[v]
        with np.errstate(invalid="ignore"):
            return self.sum(a * b) - sa * sb / self.n


def rcov(x: np.ndarray, y: np.ndarray, window: int) -> np.ndarray:
    """Sample covariance (ddof=1) over the bars where both are present."""
    p = _Pairs(x, y, window)
    return p.comoment("x", "y") / (p.n - 1)


def rcorr(x: np.ndarray, y: np.ndarray, window: int) -> np.ndarray:
    """Pearson correlation over the bars where both are present (NaN when either has no
    variance in the window)."""
    p = _Pairs(x, y, window)
    cxx, cyy = p.comoment("x", "x"), p.comoment("y", "y")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((cxx > 0) & (cyy > 0), p.comoment("x", "y") / np.sqrt(cxx * cyy), NAN)


def rbeta(x: np.ndarray, y: np.ndarray, window: int) -> np.ndarray:
    """OLS slope of x on y, cov(x, y) / var(y), over the bars where both are present (NaN
    when y has no variance in the window)."""
    p = _Pairs(x, y, window)
    cyy = p.comoment("y", "y")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cyy > 0, p.comoment("x", "y") / cyy, NAN)


# ---- cross-sectional kernels (axis 0: symbols of one date) ----------------------------


def _group_columns(n: int, groups: Groups) -> list[np.ndarray]:
    """The rows (symbols) of each group; rows in no group (-1) are in none."""
    codes = np.asarray(groups, dtype=np.int64)
    if codes.shape != (n,):
        raise ValueError(f"groups: expected one code per row ({n}), got shape {codes.shape}")
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(int(codes.max(initial=-1)) + 2))
    return [order[lo:hi] for lo, hi in itertools.pairwise(bounds) if hi > lo]


def _per_group(x: np.ndarray, groups: Groups | None,
               fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """fn applied to each group's columns of x as a C-contiguous (dates x symbols) array (no
    copy when x is the transpose of one, as the build passes it); NaN in no group. Returns
    the transpose of a date-major array."""
    xt = np.ascontiguousarray(x.T)
    if groups is None:
        return fn(xt).T
    out = np.full_like(xt, NAN)
    for cols in _group_columns(xt.shape[1], groups):
        out[:, cols] = fn(xt[:, cols])
    return out.T


def _pct_rank_rows(x: np.ndarray) -> np.ndarray:
    """Percentile rank of each row's values (dates x symbols, C order): average 1-based rank
    / count of non-missing values, NaN where x is.

    Each row is ordered by one numpy sort of int64 keys: the value's bits made monotone (NaN
    the largest), cut to hold the column index in the low bits. Values closer than the cut
    (relative ~2**(bits - 52)) may come out of order; a stable sort of the nearly sorted
    values then orders them exactly. Every sorted cell takes its place as its rank; only
    runs of equal values (each sorted cell compared with the next) get their average."""
    rows, n = x.shape
    if x.size == 0:
        return x.copy()
    bits = max(1, (n - 1).bit_length())
    low = (1 << bits) - 1
    missing = np.isnan(x)
    key = x.view(np.int64).copy()
    key ^= (key >> 63) & np.iinfo(np.int64).max  # negatives: all but the sign bit flipped
    key[missing] = np.iinfo(np.int64).max
    key &= ~low
    key |= np.arange(n, dtype=np.int64)
    key.sort(axis=1)
    key &= low
    key += (np.arange(rows, dtype=np.int64) * n)[:, None]  # flat index of each sorted cell
    v = np.take(x, key)
    if (v[:, 1:] < v[:, :-1]).any():  # near-ties out of order: a stable sort of v fixes them
        fix = np.argsort(v, axis=1, kind="stable")  # fast: v is nearly sorted
        key = np.take_along_axis(key, fix, axis=1)
        v = np.take_along_axis(v, fix, axis=1)
    count = n - np.count_nonzero(missing, axis=1)
    place = np.tile(np.arange(1.0, n + 1.0), rows)  # each sorted cell's 1-based place
    flat = v.ravel()
    tie = flat[1:] == flat[:-1]  # NaN != NaN: missing cells never tie
    tie[n - 1::n] = False  # a row's last cell and the next row's first
    if tie.any():
        at = np.flatnonzero(tie)  # cells equal to the next: runs of consecutive indexes
        cut = np.flatnonzero(np.diff(at) != 1) + 1
        first = at[np.concatenate([[0], cut])]
        last = at[np.concatenate([cut - 1, [at.size - 1]])] + 1
        size = last - first + 1
        cells = np.repeat(first - np.cumsum(size) + size, size) + np.arange(size.sum())
        place[cells] = np.repeat((first % n + last % n) * 0.5 + 1.0, size)
    place = place.reshape(rows, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        place /= count[:, None]
    place[np.arange(n) >= count[:, None]] = NAN  # the missing cells, sorted last
    out = np.empty_like(x)
    np.put(out, key, place)
    return out


def cs_pct_rank(x: np.ndarray, groups: Groups | None = None) -> np.ndarray:
    """Percentile rank per date (within each group): average rank / count of non-missing
    values, in (0, 1]. Same convention as pandas `rank(pct=True)`; ties share the average,
    exactly. Rows in no group are NaN. Returns the transpose of a date-major array."""
    return _per_group(x, groups, _pct_rank_rows)


def _demean_rows(x: np.ndarray, standardize: bool) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        out = x - bn.nanmean(x, axis=1)[:, None]
        if standardize:
            sd = bn.nanstd(x, axis=1, ddof=1)[:, None]
            out = np.where(sd > 0, out / sd, NAN)
    return out


def cs_zscore(x: np.ndarray, groups: Groups | None = None) -> np.ndarray:
    """(x - mean) / std (ddof=1) per date (within each group); NaN when the std is 0 or
    undefined. Returns the transpose of a date-major array."""
    return _per_group(x, groups, lambda v: _demean_rows(v, standardize=True))


def cs_demean(x: np.ndarray, groups: Groups | None = None) -> np.ndarray:
    """x minus the equal-weight mean of the non-missing values per date (within group).
    Returns the transpose of a date-major array."""
    return _per_group(x, groups, lambda v: _demean_rows(v, standardize=False))


def cs_winsorize(x: np.ndarray, groups: Groups | None = None, q: float = 0.01) -> np.ndarray:
    """x clipped per date (within each group) to the q and 1 - q quantiles (linear
    interpolation) of its non-missing values; rows in no group are NaN. Returns the
    transpose of a date-major array."""

    def clip(v: np.ndarray) -> np.ndarray:
        lo, hi = nanquantile(v, [q, 1.0 - q], axis=1)
        return np.clip(v, lo, hi)

    return _per_group(x, groups, clip)
