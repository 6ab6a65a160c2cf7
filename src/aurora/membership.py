"""Membership: the dates on which each symbol belongs to a universe.

A dated universe (an index's membership history, say) gives each symbol one or more
intervals `[start, end]`: both ends are member dates (inclusive), `end` None while it is
still a member. A symbol is in a cross-section (ranks, z-scores, the market return), in the
training and evaluation rows and in the ranking only on its member dates; its bars and
time-series inputs cover its whole listed life (a feature's look-back may reach back before
it joined).

Contract:
- `Membership.from_rows` takes (symbol, start, end) rows; symbols are already normalised
  tickers. Intervals of one symbol must not overlap (ValueError naming the symbol and both
  intervals: the caller turns it into the file-and-line error).
- `frame` is the table (symbol String, start Date, end Date nullable), sorted by symbol
  and start. Every query treats `end` None as "still a member".
- `mask(symbols, dates)` is the symbols x dates boolean grid the feature engine uses;
  `keep_members(frame)` keeps the rows of a long (symbol, date, ...) frame whose symbol is a
  member on its date, in their order, dropping every other row (a symbol absent from the
  membership is never a member).
- Nothing here reads files or prints.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import polars as pl

SCHEMA = {"symbol": pl.String, "start": pl.Date, "end": pl.Date}
MembershipRow = tuple[str, dt.date, dt.date | None]


@dataclass(frozen=True)
class Membership:
    """Member intervals per symbol (module docstring)."""

    frame: pl.DataFrame

    @classmethod
    def from_rows(cls, rows: Iterable[MembershipRow]) -> Membership:
        """Membership of `rows` (symbol, start, end); ValueError for an empty end before its
        start or two overlapping intervals of one symbol."""
        ordered = sorted(rows, key=lambda r: (r[0], r[1]))
        for symbol, start, end in ordered:
            if end is not None and end < start:
                raise ValueError(f"{symbol}: end {end} is before start {start}")
        for (sym_a, start_a, end_a), (sym_b, start_b, end_b) in pairwise(ordered):
            if sym_a == sym_b and (end_a is None or end_a >= start_b):
                raise ValueError(f"{sym_a}: intervals {start_a}..{end_a or ''} and "
                                 f"{start_b}..{end_b or ''} overlap")
        return cls(pl.DataFrame(ordered, schema=SCHEMA, orient="row"))

    @property
    def symbols(self) -> list[str]:
        """The symbols with any interval, sorted."""
        return self.frame["symbol"].unique().sort().to_list()

    def rows(self) -> list[MembershipRow]:
        """The intervals as (symbol, start, end) tuples, sorted by symbol and start."""
        return [tuple(r) for r in self.frame.iter_rows()]  # type: ignore[misc]

    def members_on(self, day: dt.date) -> list[str]:
        """The symbols that are members on `day`, sorted."""
        on = self.frame.filter((pl.col("start") <= day)
                               & (pl.col("end").is_null() | (pl.col("end") >= day)))
        return on["symbol"].unique().sort().to_list()

    def ever_between(self, first: dt.date, last: dt.date) -> list[str]:
        """The symbols that are members on at least one day of first..last, sorted."""
        overlap = self.frame.filter((pl.col("start") <= last)
                                    & (pl.col("end").is_null() | (pl.col("end") >= first)))
        return overlap["symbol"].unique().sort().to_list()

    def last_member_day(self, symbol: str) -> dt.date | None:
        """The last member day of `symbol` (None: still a member, or never one)."""
        ends = self.frame.filter(pl.col("symbol") == symbol)["end"]
        return None if ends.len() == 0 or ends.null_count() else ends.max()  # type: ignore[return-value]

    def mask(self, symbols: Sequence[str], dates: np.ndarray) -> np.ndarray:
        """Boolean (len(symbols) x len(dates)) grid: True where the symbol is a member.
        `dates` is ascending numpy datetime64[D]."""
        grid = np.zeros((len(symbols), len(dates)), dtype=bool)
        row_of = {s: i for i, s in enumerate(symbols)}
        days = dates.astype("datetime64[D]")
        for symbol, start, end in self.frame.iter_rows():
            row = row_of.get(symbol)
            if row is None:
                continue
            lo = int(np.searchsorted(days, np.datetime64(start, "D"), side="left"))
            hi = (len(days) if end is None
                  else int(np.searchsorted(days, np.datetime64(end, "D"), side="right")))
            grid[row, lo:hi] = True
        return grid

    def is_member(self, frame: pl.DataFrame) -> pl.Series:
        """Per row of `frame` (symbol, date, ...): is the symbol a member on the date."""
        keyed = frame.select("symbol", "date").with_row_index("_row")
        hits = (keyed.join(self.frame, on="symbol", how="inner")
                .filter((pl.col("date") >= pl.col("start"))
                        & (pl.col("end").is_null() | (pl.col("date") <= pl.col("end"))))
                ["_row"])
        member = np.zeros(frame.height, dtype=bool)
        member[hits.to_numpy()] = True
        return pl.Series("member", member)

    def keep_members(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The rows of `frame` whose symbol is a member on their date, in order."""
        return frame.filter(self.is_member(frame))
