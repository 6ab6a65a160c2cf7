"""The minute bars a stream delivered: one per (symbol, minute), updated bars winning.

A minute bar (`T: b`) arrives just after its minute; when late trades change it, the
server sends it again under `updatedBars` (`T: u`) with the same `t`. Messages may also come
twice or out of order after a reconnect. `MinuteBook.apply` is idempotent and keeps, for
each (symbol, t), the updated bar if one came (the last one), else the first minute bar:
the bars equal what a REST fetch of the same minutes returns afterwards.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from aurora.stream.protocol import StreamProtocolError

FIELDS = {"o": "open", "h": "high", "l": "low", "c": "close", "v": "volume",
          "n": "trade_count", "vw": "vwap"}
REQUIRED = ("S", "t", "o", "h", "l", "c", "v")
MINUTES_SCHEMA = {"timestamp": pl.Datetime("us", "UTC"), "symbol": pl.String,
                  "open": pl.Float64, "high": pl.Float64, "low": pl.Float64,
                  "close": pl.Float64, "volume": pl.Float64, "trade_count": pl.Int64,
                  "vwap": pl.Float64}


def _rank(bar: dict[str, Any]) -> tuple:
    return (bar["volume"] or 0.0, bar["trade_count"] or 0,
            tuple(float(bar[k] or 0.0) for k in ("close", "high", "low", "open", "vwap")))


@dataclass
class MinuteBook:
    """Minute bars by (symbol, minute start, UTC); see the module docstring."""

    bars: dict[tuple[str, dt.datetime], dict[str, Any]] = field(default_factory=dict)
    updated: set[tuple[str, dt.datetime]] = field(default_factory=set)
    newest: dt.datetime | None = None  # the latest minute held, any symbol

    @staticmethod
    def check(message: dict[str, Any]) -> None:
        """StreamProtocolError when a minute or updated bar lacks a field or its `t` is
        not a datetime (what `apply` needs); other messages pass."""
        if message.get("T") not in ("b", "u"):
            return
        missing = [f for f in REQUIRED if message.get(f) is None]
        if missing:
            raise StreamProtocolError(f"bar message of {message.get('S', '?')} lacks "
                                      f"{', '.join(missing)}")
        if not isinstance(message["t"], dt.datetime):
            raise StreamProtocolError(f"bar message of {message['S']}: t is not a time")

    def apply(self, message: dict[str, Any]) -> bool:
        """Take one decoded message (`protocol.decode`); True when it changed the book.
        Messages other than minute and updated bars are ignored. StreamProtocolError for
        a bar without its fields (`check`). Between two updated bars of one minute the
        one with more volume (then trades, then the larger values) wins: late trades only
        add, and the choice does not depend on the order they arrive in."""
        kind = message.get("T")
        if kind not in ("b", "u"):
            return False
        self.check(message)
        key = (str(message["S"]), message["t"])
        bar = {name: message.get(short) for short, name in FIELDS.items()}
        if kind == "b" and key in self.bars:
            return False  # a repeat, or the minute's updated bar came first: keep it
        if kind == "u" and key in self.updated and _rank(bar) <= _rank(self.bars[key]):
            return False  # the same update again, or an earlier one
        self.bars[key] = bar
        if kind == "u":
            self.updated.add(key)
        if self.newest is None or key[1] > self.newest:
            self.newest = key[1]
        return True

    def last_minute(self, symbol: str) -> dt.datetime | None:
        """The latest minute held for `symbol` (what the watchdog compares with the
        clock)."""
        times = [t for s, t in self.bars if s == symbol]
        return max(times) if times else None

    def frame(self) -> pl.DataFrame:
        """Every bar held, sorted by symbol then minute (`MINUTES_SCHEMA`)."""
        rows = [{"timestamp": t, "symbol": s, **bar}
                for (s, t), bar in sorted(self.bars.items())]
        return pl.DataFrame(rows, schema=MINUTES_SCHEMA)
