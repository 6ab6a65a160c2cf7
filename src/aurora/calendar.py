"""NYSE sessions, the single authority on trading days.

All functions take and return `datetime.date` session labels (New York trading dates) from
1990-01-02 on. Aurora ships the sessions and early closes that exchange-calendars (XNYS)
gives through the end of its package data (`resources/xnys_sessions.txt`, written by
`scripts/nyse_calendar.py`; `tests/test_calendar.py` checks it against the installed
exchange-calendars), so a command pays a few milliseconds for the calendar instead of the
second that building exchange-calendars' costs. Days after the shipped range, up to two years
ahead of today, come from exchange-calendars itself, loaded only then.
"""

from __future__ import annotations

import bisect
import datetime as dt
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np

if TYPE_CHECKING:
    import exchange_calendars as xcals

NEW_YORK = "America/New_York"
_FIRST = dt.date(1990, 1, 2)
_CLOSE = dt.time(16, 0)
OPEN_TIME = dt.time(9, 30)  # every NYSE session opens at 09:30 New York


@lru_cache(maxsize=1)
def _shipped() -> tuple[tuple[dt.date, ...], dict[dt.date, dt.time]]:
    """(sessions, early closes) of the shipped file."""
    text = resources.files("aurora.resources").joinpath("xnys_sessions.txt").read_text()
    bounds: dict[str, dt.date] = {}
    closed: set[dt.date] = set()
    early: dict[dt.date, dt.time] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        kind, day, *rest = line.split()
        date = dt.date.fromisoformat(day)
        if kind == "closed":
            closed.add(date)
        elif kind == "early":
            early[date] = dt.time.fromisoformat(rest[0])
        else:
            bounds[kind] = date
    days = np.arange(bounds["first"], bounds["last"] + dt.timedelta(days=1),
                     dtype="datetime64[D]")
    weekdays = days[np.is_busday(days, holidays=sorted(closed))]
    return tuple(weekdays.tolist()), early


@lru_cache(maxsize=1)
def _xnys() -> xcals.ExchangeCalendar:
    # Imported here: exchange-calendars (and pandas) cost ~1 s; only days past the shipped
    # range need it.
    import exchange_calendars as xcals

    end = dt.date.today() + dt.timedelta(days=730)
    return xcals.get_calendar("XNYS", start=_FIRST.isoformat(), end=end.isoformat())


@lru_cache(maxsize=1)
def _all_sessions() -> tuple[dt.date, ...]:
    shipped = _shipped()[0]
    if dt.date.today() + dt.timedelta(days=730) <= shipped[-1]:
        return shipped
    later = tuple(d for d in (ts.date() for ts in _xnys().sessions) if d > shipped[-1])
    return shipped + later


def sessions(start: dt.date, end: dt.date) -> list[dt.date]:
    """NYSE sessions with start <= session <= end (both inclusive); empty if start > end."""
    days = _all_sessions()
    lo = bisect.bisect_left(days, start)
    hi = bisect.bisect_right(days, end)
    return list(days[lo:hi])


def is_session(day: dt.date) -> bool:
    """True when `day` is an NYSE trading session (half days included)."""
    days = _all_sessions()
    i = bisect.bisect_left(days, day)
    return i < len(days) and days[i] == day


def next_session(day: dt.date) -> dt.date:
    """The first session strictly after `day`."""
    days = _all_sessions()
    return days[bisect.bisect_right(days, day)]


def previous_session(day: dt.date) -> dt.date:
    """The last session strictly before `day`."""
    days = _all_sessions()
    return days[bisect.bisect_left(days, day) - 1]


def sessions_back(day: dt.date, count: int) -> dt.date:
    """The session `count` sessions before the last session <= `day` (count=0: that session)."""
    days = _all_sessions()
    i = bisect.bisect_right(days, day) - 1
    return days[max(i - count, 0)]


def sessions_forward(day: dt.date, count: int) -> dt.date:
    """The session `count` sessions after the first session >= `day` (count=0: that
    session); the last known session when that is beyond the calendar."""
    days = _all_sessions()
    i = bisect.bisect_left(days, day)
    return days[min(i + count, len(days) - 1)]


def session_close_utc(day: dt.date) -> dt.datetime:
    """The UTC instant of the session's close (16:00 New York, 13:00 on half days)."""
    shipped, early = _shipped()
    if day <= shipped[-1]:
        close = dt.datetime.combine(day, early.get(day, _CLOSE), tzinfo=ZoneInfo(NEW_YORK))
        return close.astimezone(dt.UTC)
    import pandas as pd  # deferred with exchange-calendars, which loads it (see _xnys)

    return _xnys().session_close(pd.Timestamp(day)).to_pydatetime().astimezone(dt.UTC)


def session_open_utc(day: dt.date) -> dt.datetime:
    """The UTC instant of the session's open (09:30 New York)."""
    return dt.datetime.combine(day, OPEN_TIME, tzinfo=ZoneInfo(NEW_YORK)).astimezone(dt.UTC)


def session_minute_count(day: dt.date) -> int:
    """How many one-minute bars the regular session of `day` spans (390, 210 on half days)."""
    return int((session_close_utc(day) - session_open_utc(day)).total_seconds() // 60)


def last_completed_session(now: dt.datetime | None = None) -> dt.date:
    """The latest session whose close is at or before `now` (UTC-aware; default: now)."""
    now = now or dt.datetime.now(dt.UTC)
    day = now.astimezone(dt.UTC).date() + dt.timedelta(days=1)
    candidate = day if is_session(day) else previous_session(day)
    while session_close_utc(candidate) > now:
        candidate = previous_session(candidate)
    return candidate
