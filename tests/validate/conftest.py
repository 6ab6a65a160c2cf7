"""Tiny hand-built price frames for the validation tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

import polars as pl
import pytest

from aurora import calendar

START = dt.date(2024, 1, 2)  # a Tuesday, the first session of 2024
TODAY = dt.date(2024, 12, 31)


def make_bars(
    symbol: str, closes: Sequence[float], start: dt.date = START,
    volume: float = 1_000_000.0,
) -> pl.DataFrame:
    """A clean bar per consecutive NYSE session from `start`: open = prev close,
    high/low 1% outside the body, constant volume."""
    days = calendar.sessions(start, start + dt.timedelta(days=3 * len(closes) + 10))[
        : len(closes)]
    opens = [closes[0], *closes[:-1]]
    return pl.DataFrame(
        {
            "date": days,
            "symbol": [symbol] * len(closes),
            "open": [float(o) for o in opens],
            "high": [max(o, c) * 1.01 for o, c in zip(opens, closes, strict=True)],
            "low": [min(o, c) * 0.99 for o, c in zip(opens, closes, strict=True)],
            "close": [float(c) for c in closes],
            "volume": [volume] * len(closes),
        },
        schema={"date": pl.Date, "symbol": pl.String, "open": pl.Float64, "high": pl.Float64,
                "low": pl.Float64, "close": pl.Float64, "volume": pl.Float64},
    )


def walk(n: int, first: float = 100.0) -> list[float]:
    """A deterministic zig-zag: never repeats a close, moves about 1% a day."""
    return [round(first * (1 + 0.01 * ((i % 3) - 1) + 0.001 * i), 4) for i in range(n)]


@pytest.fixture()
def bars() -> Callable[..., pl.DataFrame]:
    return make_bars


@pytest.fixture()
def clean() -> pl.DataFrame:
    """Two symbols, 20 clean sessions each, sorted by symbol then date."""
    return pl.concat([make_bars("AAA", walk(20)), make_bars("BBB", walk(20, 50.0))])


@pytest.fixture()
def zigzag() -> Callable[[int, float], list[float]]:
    return walk
