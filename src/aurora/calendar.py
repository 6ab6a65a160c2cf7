"""NYSE sessions from exchange-calendars (XNYS), the single authority on trading days.

All functions take and return `datetime.date` session labels (New York trading dates).
The calendar is built once per process for 1990-01-01 .. two years ahead and cached.
"""

from __future__ import annotations

import bisect
import datetime as dt
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import exchange_calendars as xcals

NEW_YORK = "America/New_York"
_FIRST = dt.date(1990, 1, 2)


@lru_cache(maxsize=1)
def _xnys() -> xcals.ExchangeCalendar:
    # Imported here: exchange-calendars (and pandas) cost ~1 s, which the CLI should not pay
    # for commands that never touch the calendar.
    import exchange_calendars as xcals

    end = dt.date.today() + dt.timedelta(days=730)
    return xcals.get_calendar("XNYS", start=_FIRST.isoformat(), end=end.isoformat())


@lru_cache(maxsize=1)
def _all_sessions() -> tuple[dt.date, ...]:
    return tuple(ts.date() for ts in _xnys().sessions)


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


def session_close_utc(day: dt.date) -> dt.datetime:
    """The UTC instant of the session's close (16:00 New York, 13:00 on half days)."""
    import pandas as pd  # deferred with exchange-calendars, which loads it (see _xnys)

    close = _xnys().session_close(pd.Timestamp(day))
    return close.to_pydatetime().astimezone(dt.UTC)


def last_completed_session(now: dt.datetime | None = None) -> dt.date:
    """The latest session whose close is at or before `now` (UTC-aware; default: now)."""
    now = now or dt.datetime.now(dt.UTC)
    day = now.astimezone(dt.UTC).date() + dt.timedelta(days=1)
    candidate = day if is_session(day) else previous_session(day)
    while session_close_utc(candidate) > now:
        candidate = previous_session(candidate)
    return candidate
