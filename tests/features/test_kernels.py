"""The numpy kernels against naive per-window / per-date computations (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from aurora.features.ops import (
    cs_demean,
    cs_pct_rank,
    cs_zscore,
    min_obs,
    rcount,
    rmax,
    rmean,
    rmedian,
    rmin,
    rstd,
    shift,
)

# Values on a coarse grid, so ties and exact repeats are common; NaN = missing.
values = st.one_of(st.just(math.nan), st.integers(-20, 20).map(lambda i: i / 4.0))
matrix = arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 30)), elements=values)


def naive(x: np.ndarray, window: int, fn, min_count: int) -> np.ndarray:
    out = np.full_like(x, np.nan)
    for i in range(x.shape[0]):
        for t in range(x.shape[1]):
            w = x[i, max(0, t - window + 1): t + 1]
            w = w[~np.isnan(w)]
            if len(w) >= min_count:
                out[i, t] = fn(w)
    return out


@settings(max_examples=25, deadline=None)
@given(matrix, st.integers(1, 12))
def test_rolling_kernels_equal_naive_windows(x, window):
    m = min_obs(window)
    np.testing.assert_allclose(rmean(x, window), naive(x, window, np.mean, m), atol=1e-9)
    np.testing.assert_array_equal(rmax(x, window), naive(x, window, np.max, m))
    np.testing.assert_array_equal(rmin(x, window), naive(x, window, np.min, m))
    np.testing.assert_array_equal(rmedian(x, window, m), naive(x, window, np.median, m))
    np.testing.assert_array_equal(rcount(x, window), naive(x, window, len, 0))
    if m >= 2:
        np.testing.assert_allclose(rstd(x, window), naive(x, window,
                                                          lambda w: np.std(w, ddof=1), m),
                                   atol=1e-9)


@settings(max_examples=20, deadline=None)
@given(matrix, st.integers(0, 40))
def test_shift_moves_along_time(x, k):
    expected = pd.DataFrame(x.T).shift(k).to_numpy().T
    np.testing.assert_array_equal(shift(x, k), expected)


@settings(max_examples=20, deadline=None)
@given(matrix, st.integers(1, 40), st.integers(0, 5))
def test_rolling_kernel_is_causal_per_row(x, window, cut):
    """Changing row 0 after column `cut` changes nothing at or before `cut`, and no other row."""
    y = x.copy()
    y[0, cut + 1:] = 1e9
    for fn in (rmean, rstd, rmax):
        a, b = fn(x, window), fn(y, window)
        np.testing.assert_array_equal(a[0, : cut + 1], b[0, : cut + 1])
        np.testing.assert_array_equal(a[1:], b[1:])


symbols_by_dates = arrays(np.float64, st.tuples(st.integers(1, 12), st.integers(1, 5)),
                          elements=values)


@settings(max_examples=30, deadline=None)
@given(symbols_by_dates)
def test_pct_rank_equals_pandas(x):
    expected = pd.DataFrame(x).rank(axis=0, pct=True).to_numpy()
    np.testing.assert_array_equal(cs_pct_rank(x), expected)


def test_pct_rank_exact_for_nearly_equal_values():
    """Values equal to ~1e-15 (beyond the packed sort key's precision) still rank exactly."""
    base = np.linspace(0.01, 0.02, 3000)
    x = np.stack([base, base * (1 + 1e-15), -base, base[::-1]], axis=1)
    x[::7, 1] = np.nan
    x[5, 2] = x[6, 2] = 0.0
    x[7, 2] = -0.0
    expected = pd.DataFrame(x).rank(axis=0, pct=True).to_numpy()
    np.testing.assert_array_equal(cs_pct_rank(x), expected)


@settings(max_examples=25, deadline=None)
@given(symbols_by_dates, st.integers(1, 3))
def test_group_kernels_equal_pandas_groupby(x, n_groups):
    labels = np.arange(x.shape[0]) % n_groups
    groups = [np.flatnonzero(labels == g) for g in range(n_groups)]
    frame = pd.DataFrame(x)
    by = frame.groupby(labels)
    np.testing.assert_allclose(cs_demean(x, groups), (frame - by.transform("mean")).to_numpy(),
                               atol=1e-12)
    np.testing.assert_array_equal(cs_pct_rank(x, groups), by.rank(pct=True).to_numpy())
    sd = frame.std(ddof=1)
    z = np.where(sd.to_numpy() > 0, ((frame - frame.mean()) / sd).to_numpy(), np.nan)
    np.testing.assert_allclose(cs_zscore(x), z, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 300), st.integers(1, 8))
def test_pct_rank_long_tie_runs_equal_pandas(seed, n_symbols, n_levels):
    """Many symbols on a few levels: long tie groups, at the ends of rows and next to NaNs."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, n_levels, (n_symbols, 6)).astype(np.float64) * 0.1
    x[rng.uniform(size=x.shape) < 0.15] = np.nan
    x[:, 0] = 0.3  # one date where every symbol ties
    expected = pd.DataFrame(x).rank(axis=0, pct=True).to_numpy()
    np.testing.assert_array_equal(cs_pct_rank(x), expected)
