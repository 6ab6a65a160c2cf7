"""What the emulator's stream sends besides minute bars: running daily bars (`dailyBars`,
`T: d`) and trading statuses (`statuses`, `T: s`) of scripted halts.

- `TradingHalt(symbol, start, end)`: the symbol trades no more from `start` until `end`
  (None: to the end of the replay). Its minute and updated bars of those minutes are
  removed from the replay (the market did not trade them, and its daily bar does not
  count them); a status `sc` `code` (default `H`, trading halt, with a reason code and
  message) is sent at `start`, and `sc` `T` (trading resumption) at `end`.
- `running_daily_bars(frames)`: after each replayed minute, the daily bar of each symbol
  whose day changed in it: open of its first minute, highest high, lowest low, close of
  its last minute, summed volume and trades, volume-weighted vwap, over the minutes
  replayed so far (an updated bar replacing its minute's first version), with `t` at New
  York midnight of the day in UTC (04:00Z in summer, 05:00Z in winter). By default only
  the regular session's minutes count (09:30 to the close, 13:00 on half days), so a
  daily bar is first sent at the open, as Alpaca's are, and the last one agrees with the
  REST daily bar; `extended=True` counts the extended hours too (a feed whose daily bar
  includes them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from aurora.calendar import session_close_utc, session_open_utc

NEW_YORK = ZoneInfo("America/New_York")
STATUS_MESSAGES = {"H": "Trading Halt", "Q": "Quotation Resumption", "P": "Volatility "
                   "Trading Pause", "T": "Trading Resumption", "2": "Trading Halt",
                   "3": "Resume"}


@dataclass(frozen=True)
class TradingHalt:
    """A scripted halt of `symbol` from `start` to `end` (module docstring)."""

    symbol: str
    start: dt.datetime
    end: dt.datetime | None = None
    code: str = "H"
    reason_code: str = "T12"
    reason_message: str = "Trading Halted; For information requested by NASDAQ"
    tape: str = "C"

    def covers(self, symbol: str, minute: dt.datetime) -> bool:
        """True for a minute of `symbol` the halt removes from the replay."""
        return symbol == self.symbol and self.start <= minute and (
            self.end is None or minute < self.end)

    def messages(self) -> list[dict[str, Any]]:
        """The status at the halt and, when it ends, the resumption (alpaca-py's
        `TradingStatus` fields: sc, sm, rc, rm, t, z)."""
        out = [self._status(self.start, self.code, self.reason_code, self.reason_message)]
        if self.end is not None:
            out.append(self._status(self.end, "T", "", ""))
        return out

    def _status(self, at: dt.datetime, code: str, reason: str, why: str) -> dict[str, Any]:
        return {"T": "s", "S": self.symbol, "sc": code, "sm": STATUS_MESSAGES.get(code, ""),
                "rc": reason, "rm": why, "t": at, "z": self.tape}


def without_halted(bars: Sequence[dict[str, Any]],
                   halts: Sequence[TradingHalt]) -> list[dict[str, Any]]:
    """`bars` but the minutes the halts remove."""
    return [b for b in bars if not any(h.covers(b["S"], b["t"]) for h in halts)]


@lru_cache(maxsize=64)
def _session(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    return session_open_utc(day), session_close_utc(day)


def _midnight(minute: dt.datetime) -> dt.datetime:
    day = minute.astimezone(NEW_YORK).date()
    return dt.datetime.combine(day, dt.time(0), NEW_YORK).astimezone(dt.UTC)


def _regular(minute: dt.datetime) -> bool:
    opening, close = _session(minute.astimezone(NEW_YORK).date())
    return opening <= minute < close


@dataclass
class _Day:
    """One symbol's day so far, kept incrementally (a replaced minute is taken out)."""

    minutes: dict[dt.datetime, dict[str, Any]] = field(default_factory=dict)
    volume: float = 0.0
    trades: int = 0
    turnover: float = 0.0  # vwap x volume
    high: float = float("-inf")
    low: float = float("inf")
    first: dt.datetime | None = None
    last: dt.datetime | None = None

    def take(self, bar: dict[str, Any]) -> None:
        """Count `bar`, replacing the version of its minute held (if any)."""
        t = bar["t"]
        old = self.minutes.get(t)
        for sign, b in ((-1, old), (1, bar)):
            if b is not None:
                self.volume += sign * b["v"]
                self.trades += sign * int(b.get("n") or 0)
                self.turnover += sign * float(b.get("vw") or b["c"]) * b["v"]
        self.minutes[t] = bar
        if old is not None and old["h"] >= self.high > bar["h"]:
            self.high = max(b["h"] for b in self.minutes.values())  # its high was replaced
        if old is not None and old["l"] <= self.low < bar["l"]:
            self.low = min(b["l"] for b in self.minutes.values())
        self.high, self.low = max(self.high, bar["h"]), min(self.low, bar["l"])
        self.first = t if self.first is None else min(self.first, t)
        self.last = t if self.last is None else max(self.last, t)

    def message(self, symbol: str) -> dict[str, Any]:
        """The `d` message of the day so far."""
        assert self.first is not None and self.last is not None
        close = self.minutes[self.last]["c"]
        return {"T": "d", "S": symbol, "o": self.minutes[self.first]["o"], "h": self.high,
                "l": self.low, "c": close, "v": self.volume, "t": _midnight(self.first),
                "n": self.trades,
                "vw": round(self.turnover / self.volume, 4) if self.volume else close}


def running_daily_bars(frames: Sequence[Sequence[dict[str, Any]]], *,
                       extended: bool = False) -> list[list[dict[str, Any]]]:
    """For each frame of minute (`b`) and updated (`u`) bars, in replay order, the daily
    bars sent after it (module docstring): one per symbol whose counted minutes changed
    in it, in the order the symbols first appear in the frame."""
    days: dict[str, _Day] = {}
    out = []
    for frame in frames:
        changed: dict[str, None] = {}
        for bar in frame:
            if bar["T"] not in ("b", "u") or not (extended or _regular(bar["t"])):
                continue
            day = days.setdefault(bar["S"], _Day())
            if bar["T"] == "b" and bar["t"] in day.minutes:
                continue  # the updated bar came first, or a repeat
            day.take(bar)
            changed[bar["S"]] = None
        out.append([days[s].message(s) for s in changed])
    return out
