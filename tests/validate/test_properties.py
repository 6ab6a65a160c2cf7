"""Invariants of the session-gap and stale-close checks over random inputs."""

from __future__ import annotations

import datetime as dt

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from aurora import calendar
from aurora.validation import series

SESSIONS = calendar.sessions(dt.date(2023, 1, 3), dt.date(2023, 3, 31))


def frame_on(days: list[dt.date], closes: list[float] | None = None) -> pl.DataFrame:
    closes = closes or [100.0 + i for i in range(len(days))]
    return pl.DataFrame({
        "date": days, "symbol": ["AAA"] * len(days), "open": closes, "high": closes,
        "low": closes, "close": closes, "volume": [1.0] * len(days),
    }, schema={"date": pl.Date, "symbol": pl.String, "open": pl.Float64, "high": pl.Float64,
               "low": pl.Float64, "close": pl.Float64, "volume": pl.Float64})


@settings(max_examples=40, deadline=None)
@given(keep=st.lists(st.booleans(), min_size=len(SESSIONS), max_size=len(SESSIONS)),
       threshold=st.integers(2, 8))
def test_gaps_report_exactly_the_dropped_interior_sessions(keep, threshold):
    days = [d for d, k in zip(SESSIONS, keep, strict=True) if k]
    findings = series.check_session_gaps(frame_on(days), threshold) if days else []
    reported = sorted(d for f in findings for d in f.dates)
    if days:
        expected = [d for d in SESSIONS if days[0] < d < days[-1] and d not in set(days)]
    else:
        expected = []
    assert reported == expected
    for f in findings:
        if f.check == "long_gap":
            # one finding per gap: consecutive sessions, at least `threshold` long
            assert len(f.dates) >= threshold
            i = SESSIONS.index(f.dates[0])
            assert list(f.dates) == SESSIONS[i:i + len(f.dates)]
        else:
            assert f.check == "missing_sessions" and f.count == len(f.dates)


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.sampled_from([1.0, 2.0]), min_size=1, max_size=40),
       min_run=st.integers(2, 6))
def test_stale_runs_are_maximal_runs_of_equal_closes(values, min_run):
    days = SESSIONS[: len(values)]
    findings = series.check_stale_closes(frame_on(days, values), min_run)
    runs, start = [], 0
    for i in range(1, len(values) + 1):
        if i == len(values) or values[i] != values[start]:
            if i - start >= min_run:
                runs.append(tuple(days[start:i]))
            start = i
    assert [f.dates for f in findings] == runs
