"""The bars endpoint's request arithmetic and pages: the RFC-3339 window of a range of
sessions, timeframe checks, the bound on a request group's pages (`max_pages`,
`PageGuard`), and bars pages parsed into columns (`_Columns`, `_read_page`) with
one-line errors naming the symbol and field (`MalformedResponse`). The contract is in
`aurora.fetch.client`'s docstring, whose client uses these.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from aurora.errors import FetchError
from aurora.schemas import PRICES_SCHEMA

NEW_YORK = ZoneInfo("America/New_York")

_TIMEFRAME = re.compile(
    r"^(?:([1-9]|[1-5][0-9])(?:Min|T)|([1-9]|1[0-9]|2[0-3])(?:Hour|H)|1(?:Day|D)|1(?:Week|W)"
    r"|(?:1|2|3|4|6|12)(?:Month|M))$"
)

BAR_SCHEMA: dict[str, Any] = {
    "symbol": pl.String,
    "t": pl.String,
    "open": pl.Float64,
    "high": pl.Float64,
    "low": pl.Float64,
    "close": pl.Float64,
    "volume": pl.Float64,
    "vwap": pl.Float64,
    "trade_count": pl.Int64,
}


class PagingError(FetchError):
    """The page-token loop of a request group would not end (a repeated token, or more
    pages than the request can need)."""


class MalformedResponse(ValueError):
    """A 200 answer whose body is not the documented JSON shape (retried like a 5xx)."""


RECENT_SIP_DELAY = dt.timedelta(minutes=16)  # the free plan's 15 minutes, plus a margin


def rfc3339(instant: dt.datetime) -> str:
    """`2024-01-02T05:00:00Z`: an aware datetime as a UTC RFC-3339 string (seconds)."""
    return instant.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def session_window(start: dt.date, end: dt.date,
                   not_after: dt.datetime | None = None) -> tuple[str, str]:
    """The RFC-3339 UTC instants covering sessions `start`..`end` inclusive (see module doc).

    `not_after` caps the end instant (never before the end session's midnight stamp, so its
    daily bar stays covered): Alpaca's free plan refuses SIP data from the last 15 minutes
    with a 403, and 23:59:59 New York of today's session is still in the future at 17:00.
    """
    if start > end:
        raise ValueError(f"start {start} is after end {end}")
    first = dt.datetime.combine(start, dt.time(0, 0), NEW_YORK)
    last = dt.datetime.combine(end, dt.time(23, 59, 59), NEW_YORK)
    if not_after is not None:
        stamp = dt.datetime.combine(end, dt.time(0, 0), NEW_YORK)
        last = max(min(last, not_after), stamp)
    return rfc3339(first), rfc3339(last)


def check_timeframe(timeframe: str) -> str:
    """Return `timeframe` if Alpaca accepts it (`1Day`, `5Min`, `1Hour`, ...), else ValueError."""
    if not _TIMEFRAME.match(timeframe):
        raise ValueError(f"unsupported timeframe {timeframe!r} (e.g. 1Day, 1Hour, 5Min)")
    return timeframe


def describe_symbols(symbols: Sequence[str]) -> str:
    """`AAPL`, `AAPL, MSFT, KO` (up to three) or `AAPL..XOM (50 symbols)`, for messages."""
    if len(symbols) <= 3:
        return ", ".join(symbols)
    return f"{symbols[0]}..{symbols[-1]} ({len(symbols)} symbols)"


def _bars_per_session(timeframe: str) -> int:
    """An upper bound on the bars one symbol can have per session (24 h of intraday bars)."""
    match = _TIMEFRAME.match(timeframe)
    if match is None:
        raise ValueError(f"unsupported timeframe {timeframe!r}")
    minutes, hours = match.group(1), match.group(2)
    if minutes:
        return math.ceil(24 * 60 / int(minutes))
    if hours:
        return math.ceil(24 / int(hours))
    return 1


def max_pages(n_symbols: int, n_sessions: int, timeframe: str, page_limit: int) -> int:
    """The most pages a bars request for `n_symbols` x `n_sessions` may take.

    A page holds at most `page_limit` bars counted across symbols, so the request needs
    ceil(symbols x sessions x bars per session / limit) full pages. Alpaca documents that a
    page may hold fewer than `limit` bars: twice that number leaves room for pages filled
    only partly, one more page per symbol for a server that ends a page at each symbol (one
    symbol per page), and 5 for a final empty page and slack.
    """
    n_symbols = max(n_symbols, 1)
    need = n_symbols * max(n_sessions, 1) * _bars_per_session(timeframe)
    return 2 * math.ceil(need / page_limit) + n_symbols + 5


class PageGuard:
    """Ends a page-token loop that would not end on its own.

    `advance(token)` is called with every non-null `next_page_token` before the next page is
    asked: it raises `PagingError` when the token came before in this loop, or when the loop
    would ask more than `limit` pages. `what` names the request and `scope` what it covers
    ("50 symbols x 21 sessions") in the one-line messages.
    """

    def __init__(self, limit: int, what: str, scope: str) -> None:
        self.limit = limit
        self.what = what
        self.scope = scope
        self.pages = 1  # the first page has been asked
        self._seen: set[str] = set()

    def advance(self, token: str) -> None:
        """Allow one more page for `token`, or raise `PagingError`."""
        if token in self._seen:
            raise PagingError(f"{self.what}: the server returned the same next_page_token "
                              f"twice (after page {self.pages}); stopped paging")
        if self.pages >= self.limit:
            raise PagingError(f"{self.what}: more than {self.limit} pages for {self.scope}; "
                              "stopped paging")
        self._seen.add(token)
        self.pages += 1


_PLAIN = re.compile(r"^[A-Za-z0-9._/-]{1,40}$")


def printable(value: Any, width: int = 40) -> str:
    """`value` shown on one line, safe for a message: a plain ticker as it is, anything
    else JSON-quoted (newlines escaped) and truncated to `width` characters."""
    if isinstance(value, str) and _PLAIN.match(value):
        return value
    text = json.dumps(value, ensure_ascii=True, default=str)
    return text if len(text) <= width else text[: width - 3] + "..."


_FIELD_KEYS = {"open": "o", "high": "h", "low": "l", "close": "c", "volume": "v",
               "vwap": "vw", "trade_count": "n"}  # column -> Alpaca's JSON key
_NUMBER_FIELDS = tuple(_FIELD_KEYS)


class _Columns:
    """Column-wise accumulation of parsed bars (cheaper than one dict per bar)."""

    def __init__(self) -> None:
        self.cols: dict[str, list[Any]] = {name: [] for name in BAR_SCHEMA}

    def add_page(self, bars: Any) -> int:
        """Append a page's `bars` object; MalformedResponse (nothing rolled back) if bad."""
        if bars is None:
            return 0
        if not isinstance(bars, dict):
            raise MalformedResponse("'bars' is not an object keyed by symbol")
        c = self.cols
        count = 0
        for key, rows in bars.items():
            symbol = key.upper()  # JSON keys are strings; Alpaca symbols are upper case
            if rows is None:
                continue
            if not isinstance(rows, list):
                raise MalformedResponse(f"bars of {printable(symbol)} are not a list")
            first = len(c["t"])
            try:
                for bar in rows:
                    c["t"].append(bar["t"])
                    c["open"].append(bar["o"])
                    c["high"].append(bar["h"])
                    c["low"].append(bar["l"])
                    c["close"].append(bar["c"])
                    c["volume"].append(bar["v"])
                    c["vwap"].append(bar.get("vw"))
                    c["trade_count"].append(bar.get("n"))
            except (KeyError, TypeError, AttributeError) as exc:
                raise MalformedResponse(
                    f"a bar of {printable(symbol)} lacks field {printable(str(exc))}"
                ) from None
            for i, stamp in enumerate(c["t"][first:]):
                if not isinstance(stamp, str):
                    raise MalformedResponse(
                        f"bar {i + 1} of {printable(symbol)} has no timestamp "
                        f"('t' is {printable(stamp)})")
            c["symbol"].extend([symbol] * len(rows))
            count += len(rows)
        return count

    def truncate(self, length: int) -> None:
        for values in self.cols.values():
            del values[length:]

    def __len__(self) -> int:
        return len(self.cols["t"])

    def _raw(self) -> pl.DataFrame:
        """The columns as a frame of BAR_SCHEMA. A value of the wrong JSON type (a string
        price would otherwise be cast, or become null and read as a missing value) is a
        MalformedResponse naming the symbol and field; the slow search for it runs only when
        the strict construction fails."""
        try:
            return pl.DataFrame(self.cols, schema=BAR_SCHEMA, strict=True)
        except (TypeError, pl.exceptions.PolarsError):
            pass
        for name in _NUMBER_FIELDS:
            for i, value in enumerate(self.cols[name]):
                if value is not None and (isinstance(value, bool) or
                                          not isinstance(value, int | float)):
                    raise MalformedResponse(
                        f"a bar of {printable(self.cols['symbol'][i])} has a non-numeric "
                        f"{_FIELD_KEYS[name]!r} = {printable(value)}")
        return pl.DataFrame(self.cols, schema=BAR_SCHEMA, strict=False)  # e.g. n = 3.0

    def frame(self, timeframe: str) -> pl.DataFrame:
        """Bars as a frame: `date` (New York date), `timestamp` for intraday, prices.

        MalformedResponse naming the symbol when a timestamp or value cannot be read.
        """
        try:
            raw = self._raw()
            stamp = pl.col("t").str.to_datetime(time_unit="us", time_zone="UTC", strict=False)
            out = raw.with_columns(timestamp=stamp)
        except MalformedResponse:
            raise
        except (pl.exceptions.PolarsError, TypeError, ValueError) as exc:
            first = " ".join(str(exc).split())[:120]
            raise MalformedResponse(f"unreadable bar values ({first})") from None
        bad = out.filter(pl.col("timestamp").is_null())
        if bad.height:
            row = bad.row(0, named=True)
            raise MalformedResponse(f"a bar of {printable(row['symbol'])} has an unreadable "
                                    f"timestamp 't' = {printable(row['t'])}")
        out = out.with_columns(
            date=pl.col("timestamp").dt.convert_time_zone(str(NEW_YORK)).dt.date()
        )
        columns = [*PRICES_SCHEMA] + ([] if timeframe in ("1Day", "1D") else ["timestamp"])
        return out.select(columns)


def _read_page(columns: _Columns, data: dict[str, Any]) -> str | None:
    """Append one bars page to `columns`; its next page token or None.

    MalformedResponse (with `columns` rolled back) when the page is not the documented
    shape: no `bars` key, bars not keyed by symbol, a bar without `t`, a non-string token.
    """
    if "bars" not in data:
        raise MalformedResponse("the body had no 'bars'")
    mark = len(columns)
    try:
        columns.add_page(data["bars"])
        token = data.get("next_page_token") or None
        if token is not None and not isinstance(token, str):
            raise MalformedResponse("next_page_token is not a string")
    except MalformedResponse:
        columns.truncate(mark)
        raise
    return token
