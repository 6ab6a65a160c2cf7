"""f_turnover_20d on a hand-built panel: the fallback (no shares outstanding known) is on the
same scale as volume / shares, a fraction of the shares a day, not a ratio ~1.

Close 50 and volume 1e6 every day. K has a market cap of 5e9 USD (1e8 shares) from its
first bar: turnover 0.01 a day. F has no fundamentals: the fallback, the typical daily
turnover x dollar volume / its 250-session median, is that level on a usual day and twice it
on its last 20 sessions (volume doubled). L's shares (1e8) become known 10 sessions before
the last: its 20-session mean is half fallback days, half known ones.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from aurora.calendar import sessions
from aurora.features.catalog import TURNOVER_FALLBACK_LEVEL
from aurora.features.compute import compute_panel
from aurora.features.registry import MAX_LOOKBACK

N = MAX_LOOKBACK + 30


@pytest.fixture(scope="module")
def built():
    days = sessions(dt.date(2021, 1, 4), dt.date(2023, 1, 1))[:N]
    frames = []
    for sym in "FKL":
        volume = np.full(N, 1e6)
        if sym == "F":
            volume[-20:] = 2e6
        frames.append(pl.DataFrame({"date": days, "symbol": sym, "open": 50.0, "high": 50.0,
                                    "low": 50.0, "close": 50.0, "volume": volume}))
    fundamentals = pl.DataFrame({"symbol": ["K", "L"], "as_of": [days[0], days[-10]],
                                 "market_cap": [5e9, 5e9]})
    frame = compute_panel(pl.concat(frames), sectors={"F": "X", "K": "X", "L": "X"},
                          fundamentals=fundamentals)
    return days, frame


def _at(frame, day: dt.date) -> dict[str, float]:
    rows = frame.features.filter(pl.col("date") == day).sort("symbol")
    return dict(zip(rows["symbol"], rows["f_turnover_20d"], strict=True))


def test_known_shares_give_volume_over_shares(built):
    days, frame = built
    assert _at(frame, days[-1])["K"] == pytest.approx(0.01, rel=1e-12)


def test_fallback_is_a_daily_fraction_on_the_known_scale(built):
    days, frame = built
    assert 0.001 < TURNOVER_FALLBACK_LEVEL < 0.05  # a fraction of the shares a day
    before = _at(frame, days[-21])  # 20 usual days, no shares known for F nor L yet
    assert before["F"] == pytest.approx(TURNOVER_FALLBACK_LEVEL, rel=1e-12)
    assert before["L"] == pytest.approx(TURNOVER_FALLBACK_LEVEL, rel=1e-12)
    last = _at(frame, days[-1])
    # F: the last 20 sessions traded twice the 250-session median dollar volume
    assert last["F"] == pytest.approx(2 * TURNOVER_FALLBACK_LEVEL, rel=1e-12)
    # L: 10 fallback days then 10 days of 1e6 / 1e8 once its shares are known
    assert last["L"] == pytest.approx((10 * TURNOVER_FALLBACK_LEVEL + 10 * 0.01) / 20,
                                      rel=1e-12)


def test_fallback_rows_are_counted(built):
    _, frame = built
    emitted = N - MAX_LOOKBACK
    assert frame.turnover_fallback == {"F": emitted, "L": emitted - 10}
