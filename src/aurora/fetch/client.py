"""HTTP client for Alpaca's historical bars endpoint `GET /v2/stocks/bars` (httpx).

Contract:
- Auth: `APCA-API-KEY-ID` / `APCA-API-SECRET-KEY` headers. Headers are never logged, and
  every error message is scrubbed of the key and secret before it is raised. A credential
  with leading/trailing whitespace, a control or a non-ASCII character is refused before
  any request (`CredentialsError` naming the variable, never the value).
- Window: `start`/`end` are NYSE session dates, both inclusive. They are sent as RFC-3339
  UTC instants from New York midnight of `start` to 23:59:59 New York of `end`: a daily bar
  is stamped at New York midnight, so an `end` of 00:00Z would drop the end session's bar.
- Pages: `limit` (default 10000, counted across symbols) and `page_token` until
  `next_page_token` is null; a symbol that continues onto the next page is appended to.
  A request group (one `get_bars` call) fails with `PagingError` when the server repeats a
  `next_page_token`, or when it would take more than `max_pages` pages:
  2 x ceil(symbols x sessions x bars per session / limit) + symbols + 5 (a page may hold
  fewer than `limit` bars, e.g. one symbol per page).
- Time: each HTTP request (connect to the last byte of the body) gets at most `timeout`
  seconds in all, enforced by a watchdog (`aurora.bounded_http`); an overdue request is
  abandoned and retried like a timeout. A 2xx body larger than `MAX_BODY_BYTES` is not read
  further: `RequestRejected` (a retry would fetch the same). A request group gets
  `group_deadline_seconds` (`group_deadline()` builds it, also for the groups of other
  endpoints, such as corporate actions and assets); callers may add a `Deadline`
  (`aurora.deadline`) per call or for the whole client. No request, rate-limit wait or
  backoff is begun that would end past the earliest deadline: `DeadlineExceeded` instead.
- Rate limit: `RateLimiter` paces the requests. A 429 holds the next request until its
  `X-RateLimit-Reset`, else for its `Retry-After`, else for the retry policy's backoff. One
  request (one page, every attempt) waits at most `max_rate_limit_wait_seconds` on it in
  all, else `RateLimitWaitExceeded`; each wait of 5 s or more is logged as a warning while
  it happens.
- Body: `get_json` takes a JSON object by default, or an array when the caller asks for
  one (`expect="array"`, e.g. the trading API's `/v2/assets`); any other 2xx body is
  malformed.
- Parsing: unknown JSON keys are ignored, `n` and `vw` may be missing (null), `bars` may be
  null or `{}` but must be there: a 200 without `bars` is malformed. Symbol keys are
  normalised to upper case. A bar without a string `t` is malformed. A malformed 200 is
  retried like a 5xx, in the same attempts as every other failure of that page. Every bar
  becomes one row with `date` = its New York calendar date.
- Errors: retries follow `RetryPolicy`. 401/403 raise `CredentialsError` naming the
  environment variables and the service (`service`: the market-data API, or the trading
  API for a client on `APCA_API_BASE_URL`); other non-retryable answers raise
  `RequestRejected`; exhausted retries raise `RetriesExhausted` (`rate_limited` when the
  last attempt got a 429; `refused_by_rate_limit(exc)` tells a request the server kept
  refusing with 429). Every message is one line that names the request (`GET
  /v2/stocks/bars for AAPL..MSFT (50 symbols)`) and what happened.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

import httpx
import polars as pl

from aurora.bounded_http import Answer, Overdue, bounded_request
from aurora.calendar import sessions
from aurora.credentials import credential_problem
from aurora.deadline import Deadline, DeadlineExceeded
from aurora.errors import CredentialsError
from aurora.fetch.outcomes import (
    ClientStats,
    RateLimitWaitExceeded,
    RequestRejected,
    RetriesExhausted,
)
from aurora.fetch.pages import (
    RECENT_SIP_DELAY,
    MalformedResponse,
    PageGuard,
    _Columns,
    _read_page,
    check_timeframe,
    describe_symbols,
    max_pages,
    rfc3339,
    session_window,
)
from aurora.fetch.ratelimit import RateLimiter, WaitRefused
from aurora.redaction import redact
from aurora.retry import (
    GaveUp,
    Outcome,
    OutOfTime,
    RetryPolicy,
    TransientFailure,
    classify_status,
)

if TYPE_CHECKING:
    from aurora.config import AuroraConfig

NEW_YORK = ZoneInfo("America/New_York")
BARS_PATH = "/v2/stocks/bars"
MAX_PAGE_LIMIT = 10_000
GROUP_DEADLINE_SECONDS = 600.0
MAX_RATE_LIMIT_WAIT_SECONDS = 300.0
# The most of a 2xx body read: Alpaca's whole us_equity asset list (one unpaged array of
# tens of thousands of rows of a few hundred bytes) fits with room; a 10,000-bar page is
# about 1.5 MB.
MAX_BODY_BYTES = 64 * 1024 * 1024
MARKET_DATA_API = "market-data API"
TRADING_API = "trading API"
JsonShape = Literal["object", "array"]

@dataclass
class _RequestWaits:
    """Rate-limit waiting of one request (every attempt of one page)."""

    seconds: float = 0.0
    limited: int = 0
    last_limited: bool = False  # the latest attempt was answered with HTTP 429


class AlpacaBarsClient:
    """One authenticated httpx session to the market-data API. Use as a context manager.

    `timeout`: the most one HTTP request may take, from connect to the last body byte.
    `group_deadline_seconds`: the most one request group (a `get_bars` call, a batch of
    corporate actions) may take in all.
    `max_rate_limit_wait_seconds`: the most one request may wait on the rate limit in all.
    `deadline`: an optional `Deadline` no request of this client may run past (e.g. the
    whole fetch's). `monotonic` is the clock of the group deadlines (seconds); `sleep` waits
    for backoff. Both are injectable for tests. `service` names the API in credential
    errors (`MARKET_DATA_API` or `TRADING_API`); `stats` lets several clients count into
    one `ClientStats` (a fetch's bars and trading requests).
    """

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
        group_deadline_seconds: float = GROUP_DEADLINE_SECONDS,
        max_rate_limit_wait_seconds: float = MAX_RATE_LIMIT_WAIT_SECONDS,
        deadline: Deadline | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        service: str = MARKET_DATA_API,
        stats: ClientStats | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        if not 1 <= page_limit <= MAX_PAGE_LIMIT:
            raise ValueError(f"page_limit must be 1..{MAX_PAGE_LIMIT}")
        if not (timeout > 0 and group_deadline_seconds > 0 and max_rate_limit_wait_seconds > 0):
            raise ValueError("timeout, group_deadline_seconds and max_rate_limit_wait_seconds "
                             "must be positive")
        for name, value in (("APCA_API_KEY_ID", key_id), ("APCA_API_SECRET_KEY", secret_key)):
            problem = credential_problem(value)
            if problem:
                raise CredentialsError(f"{name} {problem}: correct it where it is set")
        self._secrets = tuple(s for s in (key_id, secret_key) if s)
        self.limiter = limiter
        self.policy = policy or RetryPolicy()
        self.page_limit = page_limit
        self.timeout = timeout
        self.group_deadline_seconds = group_deadline_seconds
        self.max_rate_limit_wait_seconds = max_rate_limit_wait_seconds
        self.deadline = deadline
        self.service = service
        self.max_body_bytes = max_body_bytes
        self.stats = stats if stats is not None else ClientStats()
        self._sleep = sleep or time.sleep
        self._monotonic = monotonic
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret_key,
                     "Accept": "application/json", "User-Agent": "aurora-fetch"},
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    @classmethod
    def from_config(
        cls,
        config: AuroraConfig,
        *,
        limiter: RateLimiter,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
        deadline: Deadline | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        trading: bool = False,
        stats: ClientStats | None = None,
    ) -> AlpacaBarsClient:
        """A client with every `[fetch]` setting of `config` and its checked credentials, on
        the market-data URL (`alpaca.data_url`), or with `trading` on the trading API's
        (`alpaca.base_url`, for `/v2/assets`). `stats`: count into this `ClientStats`."""
        key_id, secret = config.alpaca.require_credentials()
        fc = config.fetch
        url = config.alpaca.base_url if trading else config.alpaca.data_url
        return cls(
            url, key_id, secret, limiter=limiter,
            policy=RetryPolicy(fc.max_retries, fc.backoff_base_seconds, fc.backoff_max_seconds),
            timeout=fc.timeout_seconds, page_limit=fc.page_limit, transport=transport,
            sleep=sleep, group_deadline_seconds=fc.request_group_deadline_seconds,
            max_rate_limit_wait_seconds=fc.max_rate_limit_wait_seconds, deadline=deadline,
            monotonic=monotonic, service=TRADING_API if trading else MARKET_DATA_API,
            stats=stats,
        )

    def group_deadline(self, deadline: Deadline | None = None) -> Deadline:
        """The deadline of a request group starting now: `group_deadline_seconds` on the
        client's `monotonic` clock, or `deadline` or the client's own deadline when one of
        them passes first (that very object is returned then, so callers can tell them
        apart with `is`)."""
        group = Deadline.after(self.group_deadline_seconds, "request group",
                               clock=self._monotonic)
        return Deadline.earliest(group, deadline, self.deadline) or group

    def __enter__(self) -> AlpacaBarsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- requests ------------------------------------------------------------------------
    def get_json(
        self,
        path: str,
        params: Mapping[str, Any],
        *,
        deadline: Deadline | None = None,
        what: str | None = None,
        parse: Callable[[Any], Any] | None = None,
        expect: JsonShape = "object",
    ) -> Any:
        """One GET with pacing and retries (`self.policy`); the JSON value of a 2xx answer,
        or what `parse(value)` returns for it.

        `expect`: the JSON value must be an object (the default: every market-data answer)
        or an array (`"array"`); any other body is malformed. `parse` may raise
        `MalformedResponse`: the answer is then retried like a 5xx, in the
        same attempts. `deadline` (with the client's own) bounds every attempt and wait;
        `what` names the request in errors (default `GET <path>`). Every attempt waits for
        the rate limiter and counts in `stats.requests`; every retry counts in
        `stats.retries` and its backoff sleep in `stats.backoff_seconds`. Raises
        CredentialsError, RequestRejected, RetriesExhausted, RateLimitWaitExceeded or
        DeadlineExceeded, each with a one-line message.
        """
        what = what or f"GET {path}"
        limit = Deadline.earliest(deadline, self.deadline)
        waits = _RequestWaits()
        last: list[str] = []

        def attempt(retries: int) -> Any:
            if limit is not None and limit.expired():
                raise DeadlineExceeded(self._scrub(f"{what}: {limit.message()}{_last(last)}"),
                                       limit)
            self._acquire(what, limit, waits)
            self.stats.add(requests=1)
            waits.last_limited = False
            data = self._attempt(path, params, retries, limit, waits, expect)
            if parse is not None:
                try:
                    data = parse(data)
                except MalformedResponse as exc:
                    raise TransientFailure(f"malformed answer: {exc}") from None
            self.stats.add(successful=1)
            return data

        def on_retry(failure: TransientFailure, delay: float) -> None:
            last[:] = [failure.problem]
            self._count_retry(failure, delay)

        try:
            return self.policy.call(attempt, sleep=self._sleep, on_retry=on_retry,
                                    deadline=limit)
        except OutOfTime as exc:
            raise DeadlineExceeded(self._scrub(
                f"{what}: {exc.deadline.message()} (no time left to retry after "
                f"{exc.attempts} attempt(s); last problem: {exc.problem})"), exc.deadline
            ) from None
        except GaveUp as exc:
            raise RetriesExhausted(
                self._scrub(f"{what} failed after {exc.attempts} attempts: {exc.problem}"),
                rate_limited=waits.last_limited) from None

    def _count_retry(self, _failure: TransientFailure, delay: float) -> None:
        self.stats.add(retries=1)
        if delay > 0:
            self.stats.add(backoff_seconds=delay)

    def _acquire(self, what: str, limit: Deadline | None, waits: _RequestWaits) -> None:
        """Wait for the rate limiter within what this request may still wait in all and
        within `limit`; RateLimitWaitExceeded or DeadlineExceeded (without waiting) if not."""
        allowed = self.max_rate_limit_wait_seconds - waits.seconds
        by_deadline = limit is not None and limit.remaining() < allowed
        if limit is not None and by_deadline:
            allowed = limit.remaining()
        context = f" before {what}"
        if waits.limited:
            context += (f" (HTTP 429 {waits.limited} time(s) so far; it gives up after "
                        f"{self.max_rate_limit_wait_seconds:g} s of waiting)")
        try:
            waits.seconds += self.limiter.acquire(max(allowed, 0.0), context=context)
        except WaitRefused as exc:
            if limit is not None and by_deadline:
                raise DeadlineExceeded(self._scrub(
                    f"{what}: {limit.message()} (it would wait {exc.wait:.0f} s more for the "
                    f"rate limit: {exc.reason})"), limit) from None
            limited = f"HTTP 429 {waits.limited} time(s), " if waits.limited else ""
            raise RateLimitWaitExceeded(self._scrub(
                f"{what}: gave up on the rate limit ({limited}{waits.seconds:.0f} s waited): "
                f"{exc.wait:.0f} s more ({exc.reason}) would pass the "
                f"{self.max_rate_limit_wait_seconds:g} s one request may wait "
                "(fetch.max_rate_limit_wait_seconds)")) from None

    def _attempt(self, path: str, params: Mapping[str, Any], retries: int,
                 limit: Deadline | None, waits: _RequestWaits, expect: JsonShape) -> Any:
        """Send once; the JSON value (of the `expect`ed shape) of a 2xx answer.

        Raises `TransientFailure` to be retried (a 429 after arranging the limiter's wait,
        with no backoff sleep of its own; an overdue request; a body that is not JSON of
        that shape), `CredentialsError` or `RequestRejected` otherwise (also for a 2xx body
        larger than `max_body_bytes`).
        """
        seconds = self.timeout
        if limit is not None:
            seconds = max(min(seconds, limit.remaining()), 0.001)
        try:
            answer = bounded_request(self._http, "GET", path, seconds=seconds,
                                     max_body_bytes=self.max_body_bytes, params=dict(params))
        except Overdue:
            self.stats.count_status("timeout")
            raise TransientFailure(
                f"timeout (no complete answer within {seconds:.3g} s)") from None
        except httpx.TimeoutException as exc:
            self.stats.count_status("timeout")
            raise TransientFailure(f"timeout ({type(exc).__name__})") from None
        except httpx.RequestError as exc:  # transport errors, corrupt bodies (DecodingError)
            self.stats.count_status("connection")
            raise TransientFailure(f"connection error ({type(exc).__name__})") from None
        self.stats.count_status(str(answer.status))
        self.limiter.observe(answer.headers)
        outcome = classify_status(answer.status)
        if outcome is Outcome.OK:
            if answer.truncated:
                raise RequestRejected(self._scrub(
                    f"GET {path}: the answer (HTTP {answer.status}) is larger than "
                    f"{self.max_body_bytes:,} bytes; stopped reading it"))
            try:
                data = json.loads(answer.body)
            except ValueError:
                raise TransientFailure(f"HTTP {answer.status} with a non-JSON body") from None
            if not isinstance(data, dict if expect == "object" else list):
                raise TransientFailure(f"HTTP {answer.status} with a JSON body that is not "
                                       f"an {expect}")
            return data
        if outcome is Outcome.RATE_LIMITED:
            self.stats.add(rate_limited=1)
            waits.limited += 1
            waits.last_limited = True
            if not (self.limiter.block_until_reset(answer.headers,
                                                   why="HTTP 429, until X-RateLimit-Reset")
                    or self.limiter.block_after(answer.headers)):
                self.limiter.block_for(self.policy.backoff(retries),
                                       why="HTTP 429 without a usable X-RateLimit-Reset or "
                                           "Retry-After, backing off")
            raise TransientFailure("HTTP 429 (rate limit)", backoff=False)
        message = self._message(answer)
        if outcome is Outcome.CREDENTIALS and "subscription" not in message.lower():
            raise CredentialsError(
                f"the {self.service} rejected the credentials (HTTP {answer.status}): "
                "check APCA_API_KEY_ID and APCA_API_SECRET_KEY"
            )
        if outcome in (Outcome.CREDENTIALS, Outcome.REJECTED):
            raise RequestRejected(
                self._scrub(f"GET {path} was rejected with HTTP {answer.status}: {message}")
            )
        raise TransientFailure(f"HTTP {answer.status}")

    def _message(self, answer: Answer) -> str:
        try:
            body = json.loads(answer.body)
            text = str(body.get("message", body)) if isinstance(body, dict) else str(body)
        except ValueError:
            text = answer.body.decode("utf-8", errors="replace")
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
        deadline: Deadline | None = None,
        between: tuple[dt.datetime, dt.datetime] | None = None,
    ) -> pl.DataFrame:
        """Every bar of `symbols` for sessions `start`..`end` (inclusive), all pages;
        with `between` (aware instants, both included), only the bars starting within it
        (the minutes a stream missed while it was disconnected).

        One request group: it must end within `group_deadline_seconds` (and before
        `deadline` and the client's deadline when given) and within `max_pages` pages.
        Returns the price schema (`date`, `symbol`, `open`..`trade_count`; plus `timestamp`
        for intraday timeframes), sorted by symbol then time. Raises CredentialsError,
        RequestRejected, RetriesExhausted, RateLimitWaitExceeded, PagingError or
        DeadlineExceeded (all FetchError but the first), each naming the symbols.
        """
        if not symbols:
            raise ValueError("no symbols to request")
        check_timeframe(timeframe)
        # a free plan refuses SIP data of the last 15 minutes; a stream's fill (`between`) is
        # on the stream's own feed, which a plan that streams it serves without that delay
        recent = dt.datetime.now(dt.UTC) - RECENT_SIP_DELAY if feed == "sip" else None
        start_s, end_s = session_window(start, end, not_after=recent)
        if between is not None:
            start_s, end_s = rfc3339(between[0]), rfc3339(between[1])
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
        what = f"GET {BARS_PATH} for {describe_symbols(symbols)}"
        limit = self.group_deadline(deadline)
        n_sessions = len(sessions(start, end))
        scope = f"{len(symbols)} symbols x {n_sessions} sessions"
        if timeframe not in ("1Day", "1D"):
            scope += f" of {timeframe} bars"
        guard = PageGuard(max_pages(len(symbols), n_sessions, timeframe, self.page_limit),
                          what, f"{scope} at {self.page_limit} bars per page")
        columns = _Columns()
        token: str | None = None
        while True:
            page_params = dict(params, page_token=token) if token else params
            token = self.get_json(BARS_PATH, page_params, deadline=limit, what=what,
                                  parse=partial(_read_page, columns))
            if token is None:
                break
            guard.advance(token)
        try:
            frame = columns.frame(timeframe)
        except MalformedResponse as exc:
            raise RequestRejected(self._scrub(f"{what}: {exc}")) from None
        return frame.sort("symbol", "timestamp" if "timestamp" in frame.columns else "date")


def _last(problems: list[str]) -> str:
    return f" (last problem: {problems[-1]})" if problems else ""
