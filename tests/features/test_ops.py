"""The numeric building blocks (`aurora.features.ops`, the engine's masking and the
output columns) against naive per-window / per-date computations (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from aurora.features.compute import _nullable
from aurora.features.engine import _mask
from aurora.features.expr import Context, close
from aurora.features.operators import Max, Mean, Median, Min, Std
from aurora.features.ops import (
    cs_demean,
    cs_pct_rank,
    cs_zscore,
    min_obs,
    rbeta,
    rcorr,
    rcov,
    shift,
)

# Values on a coarse grid, so ties and exact repeats are common; NaN = missing.
values = st.one_of(st.just(math.nan), st.integers(-20, 20).map(lambda i: i / 4.0))
matrix = arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 30)), elements=values)


def rolling(operator, x: np.ndarray, window: int) -> np.ndarray:
    return operator(close, window).compute([x], Context(np.zeros(x.shape[0], dtype=np.int64)))


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
    np.testing.assert_allclose(rolling(Mean, x, window), naive(x, window, np.mean, m),
                               atol=1e-9)
    np.testing.assert_array_equal(rolling(Max, x, window), naive(x, window, np.max, m))
    np.testing.assert_array_equal(rolling(Min, x, window), naive(x, window, np.min, m))
    np.testing.assert_array_equal(rolling(Median, x, window), naive(x, window, np.median, m))
    if m >= 2 and window >= 2:
        np.testing.assert_allclose(rolling(Std, x, window), naive(x, window,
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
    for operator in (Mean, Std, Max):
        a, b = rolling(operator, x, max(window, 2)), rolling(operator, y, max(window, 2))
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
    groups = labels  # the group code of each row
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


def naive_pairs(x: np.ndarray, y: np.ndarray, window: int, fn) -> np.ndarray:
    """fn(a, b) over the bars of each window where both are present (>= min_obs, >= 2)."""
    out = np.full(x.shape, np.nan)
    for i in range(x.shape[0]):
        for t in range(x.shape[1]):
            lo = max(0, t - window + 1)
            a, b = x[i, lo:t + 1], y[i, lo:t + 1]
            both = ~(np.isnan(a) | np.isnan(b))
            if both.sum() >= max(2, min_obs(window)):
                out[i, t] = fn(a[both], b[both])
    return out


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    sa, sb = a.std(), b.std()
    return float(np.cov(a, b)[0, 1] / (a.std(ddof=1) * b.std(ddof=1))) if sa > 0 and sb > 0 \
        else math.nan


def _beta(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.cov(a, b)[0, 1] / b.var(ddof=1)) if b.std() > 0 else math.nan


noisy = st.one_of(st.just(math.nan), st.floats(-3, 3, allow_nan=False).map(lambda v: 100 + v))
pair_matrix = arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(1, 25)),
                     elements=noisy)


@settings(max_examples=30, deadline=None)
@given(pair_matrix, pair_matrix, st.integers(2, 10))
def test_rolling_comoments_equal_naive_windows(x, y, window):
    """Covariance, correlation and beta over the pairs present, on values far from 0 (the
    running sums are shifted, so they do not cancel)."""
    y = np.resize(y, x.shape)
    cov = naive_pairs(x, y, window, lambda a, b: float(np.cov(a, b)[0, 1]))
    np.testing.assert_allclose(rcov(x, y, window), cov, rtol=1e-6, atol=1e-9)
    corr, beta = naive_pairs(x, y, window, _corr), naive_pairs(x, y, window, _beta)
    ours_corr, ours_beta = rcorr(x, y, window), rbeta(x, y, window)
    # a window with (numerically) no variance may come out NaN on one side only
    flat = np.isnan(corr) != np.isnan(ours_corr)
    np.testing.assert_allclose(np.where(flat, 0, ours_corr), np.where(flat, 0, corr),
                               rtol=1e-6, atol=1e-6)
    flat = np.isnan(beta) != np.isnan(ours_beta)
    np.testing.assert_allclose(np.where(flat, 0, ours_beta), np.where(flat, 0, beta),
                               rtol=1e-6, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 400), st.integers(1, 5))
def test_group_ranks_exact_for_nearly_equal_values(seed, n_symbols, n_groups):
    """Values a few ulps apart, within sectors: ranks equal pandas' exactly; z-scores where
    they are defined (a spread that is not itself rounding noise: a few ulps of spread over
    the mean make the z-score of any two implementations differ by their summation order)."""
    rng = np.random.default_rng(seed)
    base = rng.choice([0.01, -0.02, 0.5, 3.0], size=(n_symbols, 4))
    x = base * (1 + rng.integers(0, 4, size=base.shape) * 2.0**-50)
    x[rng.uniform(size=x.shape) < 0.1] = np.nan
    labels = rng.integers(0, n_groups, n_symbols)
    by = pd.DataFrame(x).groupby(labels)
    np.testing.assert_array_equal(cs_pct_rank(x, labels), by.rank(pct=True).to_numpy())
    frame = pd.DataFrame(x)
    mean, sd = by.transform("mean"), by.transform(lambda c: c.std(ddof=1))
    expected = np.where(sd.to_numpy() > 0, ((frame - mean) / sd).to_numpy(), np.nan)
    ours = cs_zscore(x, labels)
    defined = sd.to_numpy() > 1e-9 * np.abs(mean.to_numpy())
    both = ~np.isnan(expected) & defined
    np.testing.assert_allclose(ours[both], expected[both], rtol=1e-9, atol=1e-9)


def test_rows_in_no_group_are_missing():
    x = np.arange(12.0).reshape(4, 3)
    codes = np.array([0, -1, 0, 1])
    assert np.isnan(cs_pct_rank(x, codes)[1]).all()
    assert np.isnan(cs_demean(x, codes)[1]).all()
    np.testing.assert_array_equal(cs_pct_rank(x, codes)[[0, 2, 3]],
                                  [[0.5, 0.5, 0.5], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, st.integers(0, 70), elements=values))
def test_nullable_series_has_nulls_where_nan(x):
    series = _nullable("f", x)
    assert series.null_count() == int(np.isnan(x).sum())
    np.testing.assert_array_equal(series.is_null().to_numpy(), np.isnan(x))
    np.testing.assert_array_equal(series.drop_nulls().to_numpy(), x[~np.isnan(x)])


@settings(max_examples=30, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 12)),
              elements=st.one_of(values, st.just(math.inf))),
       st.lists(st.tuples(st.integers(-2, 13), st.integers(-2, 13)), min_size=5, max_size=5))
def test_mask_in_both_layouts(x, spans):
    first = np.array([a for a, _ in spans][: x.shape[0]], dtype=np.int64)
    last = np.array([b for _, b in spans][: x.shape[0]], dtype=np.int64)
    cols = np.arange(x.shape[1])[None, :]
    keep = (cols >= first[:, None]) & (cols <= last[:, None]) & np.isfinite(x)
    expected = np.where(keep, x, np.nan)
    by_symbol = x.copy()
    _mask(by_symbol, first, last)
    np.testing.assert_array_equal(by_symbol, expected)
    by_date = np.ascontiguousarray(x.T)
    _mask(by_date.T, first, last)  # a date-major array seen symbol-major, as the engine keeps it
    np.testing.assert_array_equal(by_date.T, expected)


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 40), st.integers(1, 6)),
              elements=st.sampled_from([np.nan, -1.5, -0.0, 0.0, 0.25, 1.0, 3.0])))
def test_pct_rank_of_many_ties_equals_pandas(x):
    """Runs of equal values (-0.0 equals 0.0), at a row's ends and across NaNs, share
    their average rank exactly as pandas gives it."""
    expected = pd.DataFrame(x).rank(axis=0, pct=True).to_numpy()
    np.testing.assert_array_equal(cs_pct_rank(x), expected)
