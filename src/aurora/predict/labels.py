"""Forward-return labels, built apart from the features.

Timing (the one-session shift, as in zipline's pricing loader): a feature row dated `t` holds
what was known at the close of session `t`. A trade decided from it happens on the next
session, its *decision date* `d = next_session(t)`. The label of row (t, symbol) is

    fwd_return = close[d + horizon] / close[d] - 1,      d = next_session(t)

a close-to-close return on adjusted prices, from the close of the decision date to the close
`horizon` sessions later. Session arithmetic uses the NYSE calendar, never a symbol's own row
count, so a missing bar cannot silently stretch a label. The label becomes known at the close
of `label_end = d + horizon` (= t + horizon + 1 sessions); a missing close at `d` or at
`label_end` gives a null label, never an interpolated one.
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass

import polars as pl

from aurora import calendar
from aurora.errors import DataValidationError
from aurora.schemas import require_unique_keys


@dataclass(frozen=True)
class SessionClock:
    """NYSE sessions covering a panel, numbered 0, 1, 2, ... from the first one.

    Session numbers are only ever compared or differenced, so the origin does not matter.
    """

    days: tuple[dt.date, ...]

    @classmethod
    def covering(cls, first: dt.date, last: dt.date, pad_sessions: int = 0) -> SessionClock:
        """Sessions from the first one >= `first` to `pad_sessions` sessions after `last`."""
        # ~1.6 calendar days per session is generous; a 10-day floor covers long weekends.
        end = last + dt.timedelta(days=int(pad_sessions * 1.6) + 10)
        days = calendar.sessions(first, end)
        cut = bisect.bisect_right(days, last) + pad_sessions
        return cls(tuple(days[:cut]))

    def index_of(self, day: dt.date) -> int:
        """Session number of `day`; ValueError when `day` is not a session on this clock."""
        i = bisect.bisect_left(self.days, day)
        if i == len(self.days) or self.days[i] != day:
            raise ValueError(f"{day} is not a session on this clock")
        return i

    def frame(self) -> pl.DataFrame:
        """Columns `date` (Date) and `session` (Int64)."""
        return pl.DataFrame(
            {"date": list(self.days), "session": list(range(len(self.days)))},
            schema={"date": pl.Date, "session": pl.Int64},
        )


def attach_sessions(frame: pl.DataFrame, clock: SessionClock, source: str) -> pl.DataFrame:
    """Add the `session` number of each row's `date`.

    Raises DataValidationError naming `source`, the symbol and the date of the first row
    whose date is not an NYSE session covered by `clock`.
    """
    out = frame.join(clock.frame(), on="date", how="left")
    bad = out.filter(pl.col("session").is_null())
    if bad.height:
        row = bad.sort("date", "symbol").row(0, named=True)
        raise DataValidationError(
            f"{source}: {row['symbol']} has a row on {row['date']}, which is not an NYSE session"
            f" ({bad.height} such row(s)); run `aurora validate`"
        )
    return out


def check_closes(prices: pl.DataFrame, source: str = "prices.parquet") -> None:
    """Raise DataValidationError naming the first (symbol, date) with a null or non-positive
    close, or a duplicated (symbol, date) key."""
    for col in ("date", "symbol", "close"):
        if col not in prices.columns:
            raise DataValidationError(f"{source}: missing column {col!r}")
    bad = prices.filter(pl.col("close").is_null() | ~(pl.col("close") > 0))
    if bad.height:
        row = bad.sort("symbol", "date").row(0, named=True)
        raise DataValidationError(
            f"{source}: {row['symbol']} on {row['date']}: close {row['close']} is not a positive"
            f" price ({bad.height} such row(s))"
        )
    require_unique_keys(prices.select("symbol", "date"), source)


def forward_returns(
    prices: pl.DataFrame, horizon: int, clock: SessionClock | None = None
) -> pl.DataFrame:
    """One label row per price row.

    Returns columns `date` (the feature date t), `symbol`, `decision_date`, `label_end`
    (Date), `session`, `label_end_session` (Int64) and `fwd_return` (Float64, a fraction;
    null when either close is missing). Sorted by symbol, then date.
    Raises DataValidationError for non-session dates, bad closes or duplicate keys.
    """
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    check_closes(prices)
    if prices.height == 0:
        return pl.DataFrame(
            schema={"date": pl.Date, "symbol": pl.String, "decision_date": pl.Date,
                    "label_end": pl.Date, "session": pl.Int64, "label_end_session": pl.Int64,
                    "fwd_return": pl.Float64}
        )
    if clock is None:
        clock = SessionClock.covering(prices["date"].min(), prices["date"].max(), horizon + 2)
    base = attach_sessions(prices.select("date", "symbol", "close"), clock, "prices.parquet")
    closes = base.select("symbol", "session", "close")
    out = (
        base.select("date", "symbol", "session")
        .with_columns(
            # The one-session shift: the row of feature date t trades on session t + 1.
            decision_session=pl.col("session") + 1,
            label_end_session=pl.col("session") + 1 + horizon,
        )
        .join(
            closes.rename({"session": "decision_session", "close": "close_d"}),
            on=["symbol", "decision_session"], how="left",
        )
        .join(
            closes.rename({"session": "label_end_session", "close": "close_e"}),
            on=["symbol", "label_end_session"], how="left",
        )
        .with_columns(fwd_return=pl.col("close_e") / pl.col("close_d") - 1.0)
    )
    dates = clock.frame()
    out = out.join(
        dates.rename({"session": "decision_session", "date": "decision_date"}),
        on="decision_session", how="left",
    ).join(
        dates.rename({"session": "label_end_session", "date": "label_end"}),
        on="label_end_session", how="left",
    )
    return out.select(
        "date", "symbol", "decision_date", "label_end", "session", "label_end_session",
        "fwd_return",
    ).sort("symbol", "date")

