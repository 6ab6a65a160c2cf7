"""HTTP client for Alpaca's historical bars endpoint `GET /v2/stocks/bars` (httpx).

Contract:
- Auth: `APCA-API-KEY-ID` / `APCA-API-SECRET-KEY` headers. Headers are never logged, and
  every error message is scrubbed of the key and secret before it is raised.
- Window: `start`/`end` are NYSE session dates, both inclusive. They are sent as RFC-3339
  UTC instants from New York midnight of `start` to 23:59:59 New York of `end`: a daily bar
  is stamped at New York midnight, so an `end` of 00:00Z would drop the end session's bar.
- Pages: `limit` (default 10000, counted across symbols) and `page_token` until
  `next_page_token` is null; a symbol that continues onto the next page is appended to.
- Parsing: unknown JSON keys are ignored, `n` and `vw` may be missing (null), `bars` may be
  null or `{}`. Every bar becomes one row with `date` = its New York calendar date.
- Retries follow `RetryPolicy`, pacing follows `RateLimiter`. 401/403 raise
  `CredentialsError` naming the environment variables; other non-retryable answers raise
  `RequestRejected`; exhausted retries raise `RetriesExhausted`.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import polars as pl

from aurora.errors import CredentialsError, FetchError
from aurora.fetch.ratelimit import RateLimiter
from aurora.redaction import redact
from aurora.retry import GaveUp, Outcome, RetryPolicy, TransientFailure, classify_status
from aurora.schemas import PRICES_SCHEMA

NEW_YORK = ZoneInfo("America/New_York")
BARS_PATH = "/v2/stocks/bars"
MAX_PAGE_LIMIT = 10_000
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


class RequestRejected(FetchError):
    """The API refused the request in a way retrying cannot fix (400, 404, 422, ...)."""


class RetriesExhausted(FetchError):
    """A request still failed after every allowed retry."""


class MalformedResponse(ValueError):
    """A 200 answer whose body is not the documented JSON shape (retried like a 5xx)."""


@dataclass
class ClientStats:
    """Counters of one client's traffic (thread-safe increments through `add`)."""

    requests: int = 0
    successful: int = 0
    retries: int = 0
    rate_limited: int = 0
    backoff_seconds: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: float) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def count_status(self, label: str) -> None:
        with self._lock:
            self.statuses[label] = self.statuses.get(label, 0) + 1

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests,
                "successful": self.successful,
                "retries": self.retries,
                "rate_limited": self.rate_limited,
                "backoff_seconds": round(self.backoff_seconds, 3),
                "statuses": dict(sorted(self.statuses.items())),
            }


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


class _Columns:
    """Column-wise accumulation of parsed bars (cheaper than one dict per bar)."""

    def __init__(self) -> None:
        self.cols: dict[str, list[Any]] = {name: [] for name in BAR_SCHEMA}

    def add_page(self, bars: Any) -> int:
        if bars is None:
            return 0
        if not isinstance(bars, dict):
            raise MalformedResponse("'bars' is not an object keyed by symbol")
        c = self.cols
        count = 0
        for symbol, rows in bars.items():
            if rows is None:
                continue
            if not isinstance(rows, list):
                raise MalformedResponse(f"bars of {symbol} are not a list")
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
            except (KeyError, TypeError) as exc:
                raise MalformedResponse(f"a bar of {symbol} lacks field {exc}") from None
            c["symbol"].extend([symbol] * len(rows))
            count += len(rows)
        return count

    def truncate(self, length: int) -> None:
        for values in self.cols.values():
            del values[length:]

    def __len__(self) -> int:
        return len(self.cols["t"])

    def frame(self, timeframe: str) -> pl.DataFrame:
        """Bars as a frame: `date` (New York date), `timestamp` for intraday, prices."""
        try:
            raw = pl.DataFrame(self.cols, schema=BAR_SCHEMA, strict=False)
            stamp = pl.col("t").str.to_datetime(time_unit="us", time_zone="UTC", strict=True)
            out = raw.with_columns(timestamp=stamp).with_columns(
                date=pl.col("timestamp").dt.convert_time_zone(str(NEW_YORK)).dt.date()
            )
        except (pl.exceptions.PolarsError, TypeError, ValueError) as exc:
            raise MalformedResponse(f"unparseable bar values ({str(exc)[:120]})") from None
        columns = [*PRICES_SCHEMA] + ([] if timeframe in ("1Day", "1D") else ["timestamp"])
        return out.select(columns)


class AlpacaBarsClient:
    """One authenticated httpx session to the market-data API. Use as a context manager."""

    def __init__(
        self,
        base_url: str,
        key_id: str,
        secret_key: str,
        *,
        limiter: RateLimiter,
        policy: RetryPolicy | None = None,
        timeout: float = 30.0,
        page_limit: int = MAX_PAGE_LIMIT,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if not 1 <= page_limit <= MAX_PAGE_LIMIT:
            raise ValueError(f"page_limit must be 1..{MAX_PAGE_LIMIT}")
        self._secrets = tuple(s for s in (key_id, secret_key) if s)
        self.limiter = limiter
        self.policy = policy or RetryPolicy()
        self.page_limit = page_limit
        self.stats = ClientStats()
        self._sleep = sleep or time.sleep
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret_key,
                     "Accept": "application/json", "User-Agent": "aurora-fetch"},
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    def __enter__(self) -> AlpacaBarsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- requests ------------------------------------------------------------------------
    def get_json(self, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """One GET with pacing and retries (`self.policy`); the JSON object of a 2xx answer.

        Every attempt waits for the rate limiter and counts in `stats.requests`; every retry
        counts in `stats.retries` and its backoff sleep in `stats.backoff_seconds`.
        """

        def attempt(retries: int) -> dict[str, Any]:
            self.limiter.acquire()
            self.stats.add(requests=1)
            data = self._attempt(path, params, retries)
            self.stats.add(successful=1)
            return data

        try:
            return self.policy.call(attempt, sleep=self._sleep, on_retry=self._count_retry)
        except GaveUp as exc:
            raise RetriesExhausted(
                self._scrub(f"GET {path} failed after {exc.attempts} attempts: {exc.problem}")
            ) from None

    def _count_retry(self, _failure: TransientFailure, delay: float) -> None:
        self.stats.add(retries=1)
        if delay > 0:
            self.stats.add(backoff_seconds=delay)

    def _attempt(self, path: str, params: Mapping[str, Any], retries: int) -> dict[str, Any]:
        """Send once; the JSON object of a 2xx answer.

        Raises `TransientFailure` to be retried (a 429 after the limiter's wait, with no
        backoff sleep of its own), `CredentialsError` or `RequestRejected` otherwise.
        """
        try:
            response = self._http.get(path, params=dict(params))
        except httpx.TimeoutException as exc:
            self.stats.count_status("timeout")
            raise TransientFailure(f"timeout ({type(exc).__name__})") from None
        except httpx.RequestError as exc:  # transport errors, corrupt bodies (DecodingError)
            self.stats.count_status("connection")
            raise TransientFailure(f"connection error ({type(exc).__name__})") from None
        self.stats.count_status(str(response.status_code))
        self.limiter.observe(response.headers)
        outcome = classify_status(response.status_code)
        if outcome is Outcome.OK:
            try:
                data = response.json()
            except ValueError:
                raise TransientFailure(
                    f"HTTP {response.status_code} with a non-JSON body"
                ) from None
            if not isinstance(data, dict):
                raise TransientFailure("HTTP 200 with a JSON body that is not an object")
            return data
        if outcome is Outcome.RATE_LIMITED:
            self.stats.add(rate_limited=1)
            if not self.limiter.block_until_reset(response.headers):
                self.limiter.block_for(self.policy.backoff(retries))
            raise TransientFailure("HTTP 429 (rate limit)", backoff=False)
        message = self._message(response)
        if outcome is Outcome.CREDENTIALS and "subscription" not in message.lower():
            raise CredentialsError(
                f"the market-data API rejected the credentials (HTTP {response.status_code}): "
                "check APCA_API_KEY_ID and APCA_API_SECRET_KEY"
            )
        if outcome in (Outcome.CREDENTIALS, Outcome.REJECTED):
            raise RequestRejected(
                self._scrub(f"GET {path} was rejected with HTTP {response.status_code}: {message}")
            )
        raise TransientFailure(f"HTTP {response.status_code}")

    def _message(self, response: httpx.Response) -> str:
        try:
            body = response.json()
            text = str(body.get("message", body)) if isinstance(body, dict) else str(body)
        except ValueError:
            text = response.text
        return self._scrub(" ".join(text.split())[:200] or "(empty body)")

    def _scrub(self, text: str) -> str:
        return redact(text, self._secrets)

    # -- bars ----------------------------------------------------------------------------
    def get_bars(
        self,
        symbols: list[str],
        start: dt.date,
        end: dt.date,
        *,
        timeframe: str = "1Day",
        adjustment: str = "all",
        feed: str = "sip",
    ) -> pl.DataFrame:
        """Every bar of `symbols` for sessions `start`..`end` (inclusive), all pages.

        Returns the price schema (`date`, `symbol`, `open`..`trade_count`; plus `timestamp`
        for intraday timeframes), sorted by symbol then time. Raises CredentialsError,
        RequestRejected or RetriesExhausted.
        """
        if not symbols:
            raise ValueError("no symbols to request")
        check_timeframe(timeframe)
        recent = dt.datetime.now(dt.UTC) - RECENT_SIP_DELAY if feed == "sip" else None
        start_s, end_s = session_window(start, end, not_after=recent)
        params: dict[str, Any] = {
            "symbols": ",".join(symbols),
            "timeframe": timeframe,
            "start": start_s,
            "end": end_s,
            "limit": self.page_limit,
            "adjustment": adjustment,
            "feed": feed,
            "sort": "asc",
        }
        columns = _Columns()
        token: str | None = None
        while True:
            page_params = dict(params, page_token=token) if token else params
            _, token = self._read_page(columns, page_params)
            if token is None:
                break
        try:
            frame = columns.frame(timeframe)
        except MalformedResponse as exc:
            raise RequestRejected(f"GET {BARS_PATH}: {exc}") from None
        return frame.sort("symbol", "timestamp" if "timestamp" in frame.columns else "date")

    def _read_page(self, columns: _Columns, params: Mapping[str, Any]) -> tuple[int, str | None]:
        """Append one page to `columns`; (bars added, next page token or None).

        A page that is not the documented shape is rolled back and asked again under
        `self.policy` (each retry counts in `stats.retries`); when retries are spent it
        raises `RetriesExhausted`.
        """

        def attempt(_retries: int) -> tuple[int, str | None]:
            data = self.get_json(BARS_PATH, params)
            mark = len(columns)
            try:
                count = columns.add_page(data.get("bars"))
                token = data.get("next_page_token") or None
                if token is not None and not isinstance(token, str):
                    raise MalformedResponse("next_page_token is not a string")
            except MalformedResponse as exc:
                columns.truncate(mark)
                raise TransientFailure(str(exc)) from None
            return count, token

        try:
            return self.policy.call(attempt, sleep=self._sleep,
                                    on_retry=lambda _failure, _delay: self.stats.add(retries=1))
        except GaveUp as exc:
            raise RetriesExhausted(
                self._scrub(f"GET {BARS_PATH}: malformed page: {exc.problem}")
            ) from None
