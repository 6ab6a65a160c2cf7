"""The engine changes nothing process-wide that a notebook calling it would inherit."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

import aurora.features
from aurora.features import (
    Corr,
    Kurt,
    Market,
    Median,
    Quantile,
    Rank,
    Rsquare,
    Skew,
    Slope,
    Winsorize,
    ZScore,
    close,
    sector,
    volume,
)
from aurora.features.expr import Context

FORBIDDEN = re.compile(r"\b(mallopt|madvise|ctypes|_set_madvise_hugepage|_multiarray_umath"
                       r"|catch_warnings|simplefilter|filterwarnings)\b"
                       r"|np\._core|numpy\._core|np\.core\.|numpy\.core\.")


def test_no_allocator_settings_madvise_ctypes_or_private_numpy_api_in_the_engine():
    package = Path(aurora.features.__file__).parent
    found = [f"{path.name}:{n}: {line.strip()}"
             for path in sorted(package.glob("*.py"))
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if FORBIDDEN.search(line)]
    assert found == []


def test_window_and_cross_sectional_operators_warn_nothing_on_empty_windows():
    """Missing windows and dates give NaN without a warning, so the engine needs no
    `warnings` filter (process-wide state, unsafe on its worker threads)."""
    x = np.full((4, 12), np.nan)
    x[0, 6:] = np.arange(6.0)
    ctx = Context(np.array([0, 0, 1, -1]))
    operators = [Quantile(close, 5, 0.3), Skew(close, 5), Kurt(close, 5), Slope(close, 5),
                 Rsquare(close, 5), Median(close, 5), Corr(close, volume, 5),
                 Winsorize(close, 0.1), Winsorize(close, 0.1, sector), Rank(close),
                 ZScore(close, sector), Market(close)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for op in operators:
            with np.errstate(all="ignore"):  # as the engine computes
                out = op.compute([x] * len(op.inputs), ctx)
            empty = out[:, :6] if isinstance(op, Market) else out[1:3]  # no value there
            assert np.isnan(empty).all(), op
