"""A small in-memory Alpaca bars API for httpx.MockTransport (unit tests of the fetch stage).

It implements the documented contract the client relies on: header auth, RFC-3339 window
filtering on `t`, `limit` counted across symbols, symbols in lexical order, opaque page
tokens, `/v1/corporate-actions`, and the trading API's `/v2/assets` (every symbol with bars
active and tradable, unless `assets` lists the rows to serve). `faults` is a queue of
responses (or exceptions) served before normal handling, one per request. The real emulator
is exercised in the integration tests; this keeps unit tests fast and independent of it.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
from collections.abc import Callable
from zoneinfo import ZoneInfo

import httpx

from aurora.calendar import sessions

NY = ZoneInfo("America/New_York")
KEY, SECRET = "PKTESTKEY123", "s3cr3t-planted-value-XYZ"


class FakeClock:
    """Wall clock that only moves when `sleep` is called."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def bar_time(day: dt.date) -> str:
    return dt.datetime.combine(day, dt.time(0), NY).astimezone(dt.UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def make_bars(symbols: list[str], start: dt.date, end: dt.date) -> dict[str, list[dict]]:
    """Deterministic daily bars: one per NYSE session per symbol."""
    out: dict[str, list[dict]] = {}
    for k, symbol in enumerate(symbols):
        rows = []
        for i, day in enumerate(sessions(start, end)):
            base = 50.0 + k + 0.01 * i + 0.5 * math.sin(i / 7 + k)
            rows.append({"t": bar_time(day), "o": base, "h": base + 1, "l": base - 1,
                         "c": base + 0.25, "v": 1000 + i, "n": 10 + i, "vw": base + 0.1})
        out[symbol] = rows
    return out


def _parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


class FakeAlpaca:
    """Callable handler for httpx.MockTransport."""

    def __init__(self, bars: dict[str, list[dict]], *, actions: dict | None = None,
                 assets: list[dict] | None = None) -> None:
        self.bars = bars
        self.actions = actions or {}
        self.assets = assets
        self.log: list[tuple[str, dict[str, str]]] = []
        self.faults: list[httpx.Response | Exception | Callable[[], httpx.Response]] = []
        self.headers: list[httpx.Headers] = []

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def bar_requests(self) -> list[dict[str, str]]:
        return [p for path, p in self.log if path == "/v2/stocks/bars"]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        self.log.append((request.url.path, params))
        self.headers.append(request.headers)
        if self.faults:
            fault = self.faults.pop(0)
            if isinstance(fault, Exception):
                raise fault
            return fault() if callable(fault) else fault
        if (request.headers.get("APCA-API-KEY-ID") != KEY
                or request.headers.get("APCA-API-SECRET-KEY") != SECRET):
            return httpx.Response(401, json={"message": "unauthorized"})
        if request.url.path == "/v1/corporate-actions":
            return httpx.Response(200, json={"corporate_actions": self.actions,
                                             "next_page_token": None})
        if request.url.path == "/v2/assets":
            rows = self.assets if self.assets is not None else [
                {"symbol": s, "class": "us_equity", "status": "active", "tradable": True}
                for s in sorted(self.bars)]
            return httpx.Response(200, json=rows)
        return self._bars(params)

    def _bars(self, params: dict[str, str]) -> httpx.Response:
        lo, hi = _parse(params["start"]), _parse(params["end"])
        limit = int(params.get("limit", 1000))
        rows = [
            (symbol, bar)
            for symbol in sorted(params["symbols"].split(","))
            for bar in self.bars.get(symbol, [])
            if lo <= _parse(bar["t"]) <= hi
        ]
        offset = int(base64.b64decode(params["page_token"])) if params.get("page_token") else 0
        page = rows[offset : offset + limit]
        out: dict[str, list[dict]] = {}
        for symbol, bar in page:
            out.setdefault(symbol, []).append(bar)
        more = offset + limit < len(rows)
        token = base64.b64encode(str(offset + limit).encode()).decode() if more else None
        body = json.dumps({"bars": out, "next_page_token": token, "currency": "USD"})
        return httpx.Response(200, content=body.encode(),
                              headers={"content-type": "application/json"})
