"""`EmulatorServer`: an Alpaca-compatible market-data HTTP server on 127.0.0.1.

It also serves the trading API's assets (`/v2/assets`, `assets_api`) on the same port, so a
client points both APCA_API_DATA_URL and APCA_API_BASE_URL at it.

Standard library only (http.server.ThreadingHTTPServer, HTTP/1.1 keep-alive). Each request
goes through: numbering -> fault plan (slow, drop, injected status) -> per-key rate limit
-> authentication -> route -> JSON body (gzip when asked for and > 256 bytes) -> request log.
Every response, errors and 429s included, carries X-RateLimit-Limit/-Remaining/-Reset and
X-Request-ID. The server never redirects. Test and demo bed only: production code must not
import it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import gzip
import hmac
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from aurora.errors import ConfigError
from aurora_testbed.emulator import assets_api, bars_api, corporate_actions_api
from aurora_testbed.emulator.bars_api import NotFound, RequestContext
from aurora_testbed.emulator.data import MarketData
from aurora_testbed.emulator.faults import FaultAction, FaultPlan
from aurora_testbed.emulator.params import ParamError
from aurora_testbed.emulator.ratelimit import RateLimiter, RateState
from aurora_testbed.emulator.series import SeriesCache

LOG = logging.getLogger("aurora_testbed.emulator")
GZIP_MIN_BYTES = 256
SECRET_HEADERS = {"apca-api-secret-key", "authorization"}
_SYMBOL_ROUTE = re.compile(r"^/v2/stocks/([^/]+)/bars(/latest)?$")
_ASSET_ROUTE = re.compile(r"^/v2/assets/([^/]+)$")
_ERROR_TEXT = {500: "internal server error occurred", 502: "bad gateway",
               503: "service unavailable", 504: "gateway timeout"}
_HTML = ("<html>\r\n<head><title>{code} {text}</title></head>\r\n<body>\r\n<center><h1>{code} "
         "{text}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")


@dataclass(frozen=True)
class LoggedRequest:
    """One request as the server saw it. Secret header values are replaced by "[redacted]".

    status is None when the connection was dropped without a response; bytes counts the body
    bytes sent (after gzip; half the body for a partial drop); fault names the injected
    behaviour, if any; duration_s runs from arrival to the start of the write.
    """

    number: int
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    status: int | None
    time: dt.datetime
    bytes: int
    fault: str | None
    duration_s: float


def _utc_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class EmulatorServer:
    """Serve `market` to the holders of `credentials` (key_id -> secret); a context manager.

    rate_limit_per_minute: requests per key per clock minute before 429.
    auth_failure_status: 401 (current Alpaca reference) or 403 (older behaviour).
    faults: a FaultPlan, mutable while the server runs (a new empty plan by default).
    clock: the fake "now" (aware UTC datetime; naive values are taken as UTC) used for
    defaults, hidden unfinished sessions, adjustments as-of and rate-limit windows.
    port: 0 picks a free port; the server binds 127.0.0.1 only.
    """

    def __init__(self, market: MarketData, credentials: Mapping[str, str], *,
                 rate_limit_per_minute: int = 200, auth_failure_status: int = 401,
                 faults: FaultPlan | None = None,
                 clock: Callable[[], dt.datetime] | None = None, port: int = 0) -> None:
        if not credentials:
            raise ConfigError("the emulator needs at least one key id and secret")
        if auth_failure_status not in (401, 403):
            raise ConfigError("auth_failure_status must be 401 or 403")
        if rate_limit_per_minute < 1:
            raise ConfigError("the rate limit must be at least 1 request per minute")
        self.market = market
        self.faults = faults if faults is not None else FaultPlan()
        self.port = port
        self.url = ""
        self._credentials = dict(credentials)
        self._auth_status = auth_failure_status
        self._clock = clock or _utc_clock
        self._limiter = RateLimiter(rate_limit_per_minute, self.now)
        self._cache = SeriesCache(market)
        self._log: list[LoggedRequest] = []
        self._lock = threading.Lock()
        self._count = 0
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> str:
        """Bind and serve in a background thread; returns "http://127.0.0.1:PORT"."""
        if self._httpd is not None:
            return self.url
        handler = type("EmulatorHandler", (_Handler,), {"app": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stopping.clear()
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.02},
                                        name="aurora-emulator", daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving and release the port (idempotent); wakes requests sleeping on faults."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> EmulatorServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- observation ---------------------------------------------------------------------
    def now(self) -> dt.datetime:
        value = self._clock()
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value

    @property
    def request_log(self) -> list[LoggedRequest]:
        """A snapshot of the finished requests, ordered by request number.

        A request is logged just before its response is written, so it is in the log by the
        time the client has the response (a slow request appears only after its delay).
        """
        with self._lock:
            return sorted(self._log, key=lambda e: e.number)

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    # -- request pipeline ----------------------------------------------------------------
    def _authenticated(self, headers: Mapping[str, str]) -> tuple[str, bool]:
        key, secret = headers.get("apca-api-key-id", ""), headers.get("apca-api-secret-key", "")
        auth = headers.get("authorization", "")
        if not key and auth.lower().startswith("basic "):
            try:
                key, _, secret = base64.b64decode(auth[6:].strip()).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                key, secret = "", ""
        expected = self._credentials.get(key)
        ok = bool(key) and expected is not None and hmac.compare_digest(
            secret.encode(), expected.encode())
        return key, ok

    def _route(self, path: str, params: Mapping[str, str], ctx: RequestContext
               ) -> tuple[int, Any]:
        try:
            if path == "/v2/stocks/bars":
                return 200, bars_api.get_bars(params, ctx)
            if path == "/v2/stocks/bars/latest":
                return 200, bars_api.get_latest_bars(params, ctx)
            if path == "/v1/corporate-actions":
                return 200, corporate_actions_api.get_corporate_actions(
                    params, ctx, self.market.corporate_actions)
            if path == "/v2/assets":
                return 200, assets_api.get_assets(params, self.market.assets)
            asset = _ASSET_ROUTE.match(path)
            if asset:
                return assets_api.get_asset(unquote(asset.group(1)), self.market.assets)
            match = _SYMBOL_ROUTE.match(path)
            if match:
                symbol = unquote(match.group(1))
                if match.group(2):
                    return 200, bars_api.get_symbol_latest_bar(symbol, params, ctx)
                return 200, bars_api.get_symbol_bars(symbol, params, ctx)
            return 404, {"message": "not found"}
        except ParamError as exc:
            return 400, {"message": str(exc)}
        except NotFound as exc:
            return 404, {"message": str(exc)}

    def handle(self, h: _Handler) -> None:
        """Serve one request on handler `h` (called from the handler's thread)."""
        started = time.monotonic()
        with self._lock:
            self._count += 1
            number = self._count
        received = self.now()
        split = urlsplit(h.path)
        path, params = split.path, dict(parse_qsl(split.query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in h.headers.items()}
        actions = self.faults.take(number, path)
        by_kind = {a.kind: a for a in actions}
        if "slow" in by_kind:
            self._stopping.wait(by_kind["slow"].seconds)
        key, ok = self._authenticated(headers)
        status_fault = by_kind.get("rate_limit") or by_kind.get("error")
        rate = self._limiter.hit(key)
        extra: dict[str, str] = {}
        if status_fault is not None and status_fault.kind == "rate_limit":
            rate = self._limiter.exhausted(key)
        status, body, ctype = self._respond(h.command, path, params, number, received,
                                            status_fault, rate, ok, extra)
        fault = "+".join(a.label for a in actions) or None
        if h.command != "GET":  # a request body, if any, was not read: do not reuse the socket
            h.close_connection = True
        logged = {k: ("[redacted]" if k.lower() in SECRET_HEADERS else v)
                  for k, v in h.headers.items()}

        def record(sent_status: int | None, sent_bytes: int) -> None:
            # Logged before the body goes out, so a client that has its response can rely
            # on finding the request in the log.
            entry = LoggedRequest(number, h.command, path, params, logged, sent_status,
                                  received, sent_bytes, fault, time.monotonic() - started)
            with self._lock:
                self._log.append(entry)

        _send(h, status, body, ctype, rate, number, headers, extra, by_kind.get("drop"), record)

    def _respond(self, method: str, path: str, params: Mapping[str, str], number: int,
                 received: dt.datetime, status_fault: FaultAction | None, rate: RateState,
                 authenticated: bool, extra: dict[str, str]) -> tuple[int, bytes, str]:
        if status_fault is not None and status_fault.kind == "error":
            code = status_fault.status
            if status_fault.body == "html":
                text = _HTML.format(code=code, text=_ERROR_TEXT[code].title())
                return code, text.encode(), "text/html"
            return code, _json({"message": _ERROR_TEXT[code]}), "application/json"
        if not rate.allowed:
            if status_fault is not None and status_fault.retry_after is not None:
                extra["Retry-After"] = str(status_fault.retry_after)
            return 429, _json({"message": "too many requests."}), "application/json"
        if not authenticated:
            text = "unauthorized" if self._auth_status == 401 else "forbidden"
            return self._auth_status, _json({"message": text}), "application/json"
        if method != "GET":
            return 405, _json({"message": "method not allowed"}), "application/json"
        ctx = RequestContext(self._cache, received, number, self.faults)
        try:
            status, payload = self._route(path, params, ctx)
        except Exception:  # a bug or bad stored data must not kill the connection silently
            LOG.exception("emulator request %d (%s) failed", number, path)
            status, payload = 500, {"message": _ERROR_TEXT[500]}
        return status, _json(payload), "application/json"


def _json(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def _wants_gzip(headers: Mapping[str, str]) -> bool:
    for part in headers.get("accept-encoding", "").split(","):
        name, _, q = part.strip().partition(";")
        if name.strip().lower() == "gzip" and q.replace(" ", "") not in ("q=0", "q=0.0"):
            return True
    return False


def _send(h: _Handler, status: int, body: bytes, ctype: str, rate: RateState, number: int,
          headers: Mapping[str, str], extra: Mapping[str, str], drop: FaultAction | None,
          record: Callable[[int | None, int], None]) -> None:
    """Write the response (or drop it), calling record(status or None, body bytes) first."""
    if drop is not None and drop.drop_mode == "no_response":
        record(None, 0)
        h.close_connection = True
        return
    zipped = _wants_gzip(headers) and len(body) > GZIP_MIN_BYTES
    encoded = gzip.compress(body, compresslevel=5, mtime=0) if zipped else body
    if drop is not None:  # partial_body: promise the whole body, send half, hang up
        encoded, promised = encoded[: len(encoded) // 2], len(encoded)
        h.close_connection = True
    else:
        promised = len(encoded)
    record(status, len(encoded))
    try:
        h.send_response(status)
        h.send_header("Content-Type", f"{ctype}; charset=utf-8")
        h.send_header("Content-Length", str(promised))
        if zipped:
            h.send_header("Content-Encoding", "gzip")
        h.send_header("Vary", "Accept-Encoding")
        h.send_header("X-Request-ID", f"emulator-{number:08d}")
        for name, value in (rate.headers() | dict(extra)).items():
            h.send_header(name, value)
        h.end_headers()
        h.wfile.write(encoded)
        h.wfile.flush()
    except (BrokenPipeError, ConnectionResetError):
        h.close_connection = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "aurora-emulator"
    sys_version = ""
    app: EmulatorServer

    def do_GET(self) -> None:
        self.app.handle(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def log_message(self, format: str, *args: Any) -> None:  # the request log replaces it
        pass
