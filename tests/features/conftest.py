"""Random and hand-built panels for the feature tests."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from aurora.calendar import sessions

SECTORS = {"AAA": "Tech", "BBB": "Tech", "CCC": "Energy", "DDD": "Energy", "EEE": "Energy",
           "FFF": "Health", "GGG": "Health", "HHH": "Utilities"}


def random_panel(
    n_sessions: int = 340, seed: int = 3, missing: float = 0.0, ragged: bool = True
) -> pl.DataFrame:
    """Prices for SECTORS' symbols: random walks with OHLC, volumes, ragged starts/ends."""
    rng = np.random.default_rng(seed)
    days = sessions(dt.date(2020, 1, 2), dt.date(2023, 12, 29))[:n_sessions]
    frames = []
    for i, sym in enumerate(SECTORS):
        start = (i % 3) * 7 if ragged else 0
        end = n_sessions - (i % 2) * 5 if ragged else n_sessions
        n = end - start
        r = rng.normal(0.0003, 0.02, n) + 0.5 * rng.normal(0, 0.01, n)
        close = 50 * (i + 1) * np.exp(np.cumsum(r))
        opn = close * np.exp(rng.normal(0, 0.005, n))
        high = np.maximum(opn, close) * np.exp(np.abs(rng.normal(0, 0.006, n)))
        low = np.minimum(opn, close) * np.exp(-np.abs(rng.normal(0, 0.006, n)))
        vol = np.round(1e6 * (i + 1) * rng.lognormal(0, 0.4, n))
        frame = pl.DataFrame({
            "date": days[start:end], "symbol": [sym] * n, "open": opn, "high": high,
            "low": low, "close": close, "volume": vol,
        })
        if missing:
            keep = rng.uniform(size=n) >= missing
            keep[0] = keep[-1] = True
            frame = frame.filter(pl.Series(keep))
        frames.append(frame)
    return pl.concat(frames).sort("symbol", "date")


def random_fundamentals(prices: pl.DataFrame, seed: int = 4) -> pl.DataFrame:
    """Two market-cap snapshots per symbol (USD), the first after the history starts."""
    rng = np.random.default_rng(seed)
    first = prices["date"].min()
    rows = []
    for i, sym in enumerate(SECTORS):
        for k, offset in enumerate((40, 200)):
            rows.append({"symbol": sym, "as_of": first + dt.timedelta(days=offset),
                         "market_cap": float(1e9 * (i + 1) * (1 + k) * rng.uniform(1, 3))})
    return pl.DataFrame(rows)


@pytest.fixture(scope="session")
def panel() -> pl.DataFrame:
    return random_panel()


@pytest.fixture(scope="session")
def fundamentals(panel: pl.DataFrame) -> pl.DataFrame:
    return random_fundamentals(panel)


def assert_features_close(expected: pl.DataFrame, actual: pl.DataFrame) -> None:
    """The same (symbol, date) rows and missing cells, and every value within 1e-9
    relative or 1e-9 of the feature's standard deviation over the panel: two computations
    whose running-window sums start at different sessions (a tail, a block) differ in their
    last bits, which a value near zero after a cancellation (close - its mean) shows."""
    assert expected.select("symbol", "date").equals(actual.select("symbol", "date"))
    for name in expected.columns[2:]:
        x, y = expected[name].to_numpy(), actual[name].to_numpy()
        assert np.array_equal(np.isnan(x), np.isnan(y)), name
        scale = float(np.nanstd(x)) if np.isfinite(x).any() else 0.0
        np.testing.assert_allclose(y, x, rtol=1e-9, atol=1e-9 * scale + 1e-300, err_msg=name)
