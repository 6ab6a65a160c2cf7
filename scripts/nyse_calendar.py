#!/usr/bin/env python3
"""Write `src/aurora/resources/xnys_sessions.txt`, the NYSE sessions Aurora ships, from
exchange-calendars (XNYS).

    .venv/bin/python scripts/nyse_calendar.py [--end 2035-12-31]

Run it when exchange-calendars is upgraded in the lock (it learns new unscheduled closures)
or to ship a later end year. `tests/test_calendar.py` fails while the shipped file and the
installed exchange-calendars disagree on any session or close.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

import exchange_calendars as xcals

OUT = Path(__file__).resolve().parents[1] / "src" / "aurora" / "resources" / "xnys_sessions.txt"


def render(end: dt.date) -> str:
    """The file's text: the first and last session, every weekday in between that is not a
    session, and every session that does not close at 16:00 New York (with its close)."""
    calendar = xcals.get_calendar("XNYS", start="1990-01-01", end=end.isoformat())
    sessions = [ts.date() for ts in calendar.sessions]
    closes = calendar.closes.dt.tz_convert("America/New_York")
    lines = [f"# NYSE (XNYS) sessions from exchange-calendars {xcals.__version__}: written by "
             "scripts/nyse_calendar.py, checked by tests/test_calendar.py",
             f"first {sessions[0]}", f"last {sessions[-1]}"]
    present = set(sessions)
    day = sessions[0]
    while day <= sessions[-1]:
        if day.weekday() < 5 and day not in present:
            lines.append(f"closed {day}")
        day += dt.timedelta(days=1)
    for session, close in closes.items():
        if (close.hour, close.minute) != (16, 0):
            lines.append(f"early {session.date()} {close:%H:%M}")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--end", type=dt.date.fromisoformat, default=dt.date(2035, 12, 31))
    args = parser.parse_args()
    OUT.write_text(render(args.end), encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
