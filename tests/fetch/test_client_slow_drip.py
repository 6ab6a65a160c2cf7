"""A server that drips its answer: every HTTP request has a total deadline (`timeout`).

A real threaded HTTP server on 127.0.0.1 sends 64 bytes every 50 ms, so no single read
ever waits anywhere near the client's 0.5 s timeout, yet a whole answer takes 3 s. httpx's
timeouts are per operation; the client's watchdog must cut the request at 0.5 s and retry
it like a timeout.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fetch_fakeapi import KEY, SECRET, FakeClock, make_bars

from aurora.calendar import sessions
from aurora.errors import FetchError
from aurora.fetch.client import AlpacaBarsClient
from aurora.fetch.ratelimit import RateLimiter
from aurora.retry import RetryPolicy

D = dt.date
DRIP_BYTES, DRIP_GAP, DRIP_SECONDS = 64, 0.05, 3.0
TIMEOUT = 0.5


def bars_body() -> bytes:
    """A valid bars page padded with spaces to what dripping takes DRIP_SECONDS to send."""
    body = json.dumps({"bars": make_bars(["AAA"], D(2024, 1, 2), D(2024, 1, 5)),
                       "next_page_token": None}).encode()
    size = int(DRIP_BYTES * DRIP_SECONDS / DRIP_GAP)
    return body + b" " * max(size - len(body), 0)


class DripServer:
    """Answers request n in the way `modes[n]` says (the last mode repeats):
    "fast" at once, "body" with the body dripped, "headers" with the headers dripped."""

    def __init__(self, modes: list[str]) -> None:
        self.modes = modes
        self.requests = 0
        self.stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:  # the stdlib handler's name
                server.requests += 1
                mode = server.modes[min(server.requests, len(server.modes)) - 1]
                body = bars_body()
                head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        f"Content-Length: {len(body)}\r\n").encode()
                if mode == "headers":
                    self.drip(head + b"".join(f"X-Pad-{i}: {'x' * 50}\r\n".encode()
                                               for i in range(60)) + b"\r\n")
                    self.wfile.write(body)
                elif mode == "body":
                    self.wfile.write(head + b"\r\n")
                    self.drip(body)
                else:
                    self.wfile.write(head + b"\r\n" + body)
                self.wfile.flush()

            def drip(self, data: bytes) -> None:
                for i in range(0, len(data), DRIP_BYTES):
                    if server.stop.is_set():
                        return
                    self.wfile.write(data[i:i + DRIP_BYTES])
                    self.wfile.flush()
                    time.sleep(DRIP_GAP)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> DripServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(autouse=True)
def _calendar_loaded() -> Iterator[None]:
    sessions(D(2024, 1, 2), D(2024, 1, 5))  # load the NYSE calendar outside the timings
    yield


def client_for(url: str, clock: FakeClock, retries: int) -> AlpacaBarsClient:
    limiter = RateLimiter(1000, clock=clock.time, sleep=clock.sleep)
    return AlpacaBarsClient(url, KEY, SECRET, limiter=limiter, timeout=TIMEOUT,
                            policy=RetryPolicy(retries, 0.5, 1.0, rng=random.Random(1)),
                            sleep=clock.sleep)


@pytest.mark.parametrize("mode", ["body", "headers"])
def test_a_dripping_answer_is_cut_at_the_timeout_and_retried(mode):
    clock = FakeClock()
    with DripServer([mode]) as server, client_for(server.url, clock, retries=1) as client:
        started = time.monotonic()
        with pytest.raises(FetchError) as info:
            client.get_bars(["AAA"], D(2024, 1, 2), D(2024, 1, 5), feed="iex")
        elapsed = time.monotonic() - started
        statuses = client.stats.to_dict()["statuses"]
    assert str(info.value) == ("GET /v2/stocks/bars for AAA failed after 2 attempts: "
                               "timeout (no complete answer within 0.5 s)")
    assert 2 * TIMEOUT <= elapsed < 2 * TIMEOUT + 1.0 < DRIP_SECONDS
    assert statuses == {"timeout": 2} and server.requests == 2


def test_a_drip_then_a_good_answer_succeeds():
    clock = FakeClock()
    with DripServer(["body", "fast"]) as server, \
            client_for(server.url, clock, retries=2) as client:
        started = time.monotonic()
        frame = client.get_bars(["AAA"], D(2024, 1, 2), D(2024, 1, 5), feed="iex")
        elapsed = time.monotonic() - started
        stats = client.stats.to_dict()
    assert frame.height == 4
    assert elapsed < DRIP_SECONDS / 2
    assert stats["statuses"] == {"200": 1, "timeout": 1} and stats["retries"] == 1
