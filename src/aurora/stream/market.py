"""What the stream says besides minute bars: each symbol's running daily bar (`dailyBars`,
`T: d`) and its trading statuses (`statuses`, `T: s`), kept for the session.

Status codes (Alpaca's real-time stock data reference, "Status Codes"): on the UTP tapes
(C, O) `H` trading halt, `Q` quotation resumption (quotes again, no trades yet), `P`
volatility trading pause and `T` trading resumption; on the CTA tapes (A, B) `2` trading
halt and `3` resume. `H`, `Q`, `P` and `2` leave a symbol halted (it trades no more, so it
sends no minute bar: its silence is expected); `T` and `3` end the halt. The other codes
(imbalances, short-sale restriction, LULD indications) change nothing here.

A streamed minute bar of a halted symbol ends its halt (`traded`): the resumption status
may have been sent during a disconnect, and statuses are not filled over REST.

A daily bar is the day so far, re-sent as it grows: the one kept per symbol is the latest,
i.e. the one with the most volume (then trades; on a tie the one received last), so that a
repeat or a reordering after a reconnect cannot replace it with an older one. Each keeps
`as_of`, the latest minute the session held when it arrived (the market's clock), which is
how much of the day it can be compared with.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from aurora.calendar import NEW_YORK as NEW_YORK_NAME
from aurora.stream.protocol import STATUS_TYPE, StreamProtocolError

HALT_CODES = frozenset({"H", "Q", "P", "2"})
IMPLIED = "implied by a minute bar"
RESUME_CODES = frozenset({"T", "3"})
DAILY_REQUIRED = ("S", "t", "o", "h", "l", "c", "v")
STATUS_REQUIRED = ("S", "t", "sc")
NEW_YORK = ZoneInfo(NEW_YORK_NAME)


def _check(message: dict[str, Any], required: tuple[str, ...], what: str) -> None:
    missing = [f for f in required if message.get(f) is None]
    if missing:
        raise StreamProtocolError(f"{what} message of {message.get('S', '?')} lacks "
                                  f"{', '.join(missing)}")
    if not isinstance(message["t"], dt.datetime):
        raise StreamProtocolError(f"{what} message of {message['S']}: t is not a time")


@dataclass(frozen=True)
class Status:
    """One trading status message (alpaca-py's `TradingStatus`: sc, sm, rc, rm, z)."""

    symbol: str
    at: dt.datetime
    code: str
    message: str = ""
    reason_code: str = ""
    reason_message: str = ""
    tape: str = ""

    @classmethod
    def from_message(cls, m: dict[str, Any]) -> Status:
        """StreamProtocolError without S, t (a datetime) or sc."""
        _check(m, STATUS_REQUIRED, "status")
        return cls(str(m["S"]), m["t"], str(m["sc"]), str(m.get("sm") or ""),
                   str(m.get("rc") or ""), str(m.get("rm") or ""), str(m.get("z") or ""))

    @property
    def halts(self) -> bool:
        return self.code in HALT_CODES

    @property
    def resumes(self) -> bool:
        return self.code in RESUME_CODES


@dataclass(frozen=True)
class Halt:
    """A halt of `symbol` from `start` to `end` (None: not resumed in the session), by the
    status that began it."""

    symbol: str
    start: dt.datetime
    end: dt.datetime | None
    code: str
    reason_code: str
    reason_message: str

    def covers(self, instant: dt.datetime) -> bool:
        return self.start <= instant and (self.end is None or instant < self.end)

    def line(self) -> str:
        """`XYZ 14:02-14:17 (code H, reason T12: ...)`, New York times."""
        start = f"{self.start.astimezone(NEW_YORK):%H:%M}"
        end = f"{self.end.astimezone(NEW_YORK):%H:%M}" if self.end is not None \
            else " not resumed"
        reason = ": ".join(r for r in (self.reason_code, self.reason_message) if r)
        return f"{self.symbol} {start}-{end} (code {self.code}, reason {reason or 'none'})"

    def to_dict(self) -> dict[str, Any]:
        def utc(value: dt.datetime | None) -> str | None:
            return None if value is None else \
                value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")

        return {"symbol": self.symbol, "halted": utc(self.start), "resumed": utc(self.end),
                "code": self.code, "reason_code": self.reason_code,
                "reason_message": self.reason_message}


@dataclass(frozen=True)
class DailyBar:
    """The running daily bar of `symbol` (`t`: New York midnight of the day, in UTC), and
    `as_of`: the latest minute held when it arrived (None: nothing held yet)."""

    symbol: str
    t: dt.datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    trade_count: int
    vwap: float | None
    as_of: dt.datetime | None

    @classmethod
    def from_message(cls, m: dict[str, Any], as_of: dt.datetime | None) -> DailyBar:
        """StreamProtocolError without S, t (a datetime), o, h, l, c or v."""
        _check(m, DAILY_REQUIRED, "daily bar")
        vwap = m.get("vw")
        return cls(str(m["S"]), m["t"], float(m["o"]), float(m["h"]), float(m["l"]),
                   float(m["c"]), float(m["v"]), int(m.get("n") or 0),
                   None if vwap is None else float(vwap), as_of)


@dataclass
class MarketState:
    """The latest daily bar and the status history of each symbol (module docstring)."""

    daily: dict[str, DailyBar] = field(default_factory=dict)
    statuses: dict[str, list[Status]] = field(default_factory=dict)

    @staticmethod
    def check(message: dict[str, Any]) -> None:
        """StreamProtocolError when a daily bar or a status lacks what `apply` needs;
        other messages pass."""
        if message.get("T") == "d":
            _check(message, DAILY_REQUIRED, "daily bar")
        elif message.get("T") == STATUS_TYPE:
            _check(message, STATUS_REQUIRED, "status")

    def apply(self, message: dict[str, Any], as_of: dt.datetime | None) -> bool:
        """Keep a daily bar (`T: d`) or a status (`T: s`); True when it changed the state.
        Other messages are ignored; a repeated status changes nothing."""
        kind = message.get("T")
        if kind == "d":
            bar = DailyBar.from_message(message, as_of)
            held = self.daily.get(bar.symbol)
            if held is not None and (bar.volume, bar.trade_count) < (held.volume,
                                                                     held.trade_count):
                return False
            self.daily[bar.symbol] = bar
            return True
        if kind == STATUS_TYPE:
            status = Status.from_message(message)
            history = self.statuses.setdefault(status.symbol, [])
            if status in history:
                return False
            history.append(status)
            history.sort(key=lambda s: s.at)  # stable: same instant, order of arrival
            return True
        return False

    def traded(self, symbol: str, minute: dt.datetime) -> None:
        """A streamed minute bar of `symbol` starting at `minute`: if the symbol was halted
        by then, it trades again, so its halt ends there (an implied resumption, `T` with
        the message "implied by a minute bar"), in case the resumption status was lost in a
        disconnect: statuses are not filled over REST."""
        history = self.statuses.get(symbol)
        if not history:
            return
        before = [s for s in history if s.at < minute]  # a bar starting after the status
        opened = next((s for s in reversed(before) if s.halts or s.resumes), None)
        if opened is not None and opened.halts:
            history.append(Status(symbol, minute, "T", IMPLIED))
            history.sort(key=lambda s: s.at)

    def halts(self) -> list[Halt]:
        """Every halt of the session, by symbol then start: a halt-like status opens one
        (a second one while halted, e.g. `Q` after `H`, does not), a resumption ends it."""
        out = []
        for symbol in sorted(self.statuses):
            opened: Status | None = None
            for status in self.statuses[symbol]:
                if status.halts and opened is None:
                    opened = status
                elif status.resumes and opened is not None:
                    out.append(_halt(opened, status.at))
                    opened = None
            if opened is not None:
                out.append(_halt(opened, None))
        return out

    def halted_at(self, instant: dt.datetime | None = None) -> set[str]:
        """The symbols halted at `instant` (None: by every status held)."""
        return {h.symbol for h in self.halts()
                if (h.end is None if instant is None else h.covers(instant))}

    def resumed(self) -> dict[str, dt.datetime]:
        """Each resumed symbol's latest resumption: its silence counts from there."""
        return {h.symbol: h.end for h in self.halts() if h.end is not None}


def _halt(opened: Status, end: dt.datetime | None) -> Halt:
    return Halt(opened.symbol, opened.at, end, opened.code, opened.reason_code,
                opened.reason_message)
