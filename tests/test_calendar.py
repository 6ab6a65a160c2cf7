"""The NYSE sessions Aurora ships against the installed exchange-calendars."""

from __future__ import annotations

import datetime as dt

import exchange_calendars as xcals

from aurora import calendar


def test_shipped_sessions_and_closes_equal_exchange_calendars():
    shipped, _ = calendar._shipped()
    xnys = xcals.get_calendar("XNYS", start=shipped[0].isoformat(),
                              end=shipped[-1].isoformat())
    assert shipped == tuple(ts.date() for ts in xnys.sessions), (
        "resources/xnys_sessions.txt is stale: run scripts/nyse_calendar.py")
    expected = {ts.date(): close.to_pydatetime() for ts, close in xnys.closes.items()}
    ours = {day: calendar.session_close_utc(day) for day in shipped}
    assert ours == expected


def test_sessions_reach_two_years_ahead():
    ahead = dt.date.today() + dt.timedelta(days=700)
    assert calendar.sessions(ahead, ahead + dt.timedelta(days=10))


def test_half_day_and_holiday():
    assert not calendar.is_session(dt.date(2018, 12, 25))
    assert calendar.next_session(dt.date(2018, 12, 24)) == dt.date(2018, 12, 26)
    assert calendar.session_close_utc(dt.date(2018, 11, 23)) == dt.datetime(
        2018, 11, 23, 18, 0, tzinfo=dt.UTC)
    assert calendar.session_close_utc(dt.date(2018, 7, 3)) == dt.datetime(
        2018, 7, 3, 17, 0, tzinfo=dt.UTC)
    assert calendar.session_close_utc(dt.date(2018, 7, 5)) == dt.datetime(
        2018, 7, 5, 20, 0, tzinfo=dt.UTC)
