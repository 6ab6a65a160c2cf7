"""A webhook receiver that drips its answer cannot hold a command: each POST has a total
deadline (`aurora.bounded_http`), not just httpx's per-read timeouts.

The receivers here are real HTTP servers on 127.0.0.1 that write their answer a byte at a
time; each byte arrives well within the read timeout, so only a total deadline stops them.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from aurora.bounded_http import Overdue, bounded_request
from aurora.ops import alerts

NO_SLEEP = lambda _seconds: None  # noqa: E731
TOKEN_PATH = "/hooks/T000/B000/token-s3cr3t-XYZ"
DRIP_BYTES = 60
DRIP_INTERVAL = 0.05  # a whole answer takes DRIP_BYTES * DRIP_INTERVAL = 3 s


class Dripper:
    """A real HTTP server that answers POSTs with 200, dripping its headers or its body."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.stop = threading.Event()
        self.posts = 0
        dripper = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                dripper.posts += 1
                if dripper.where == "headers":
                    self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                    self._drip(b"X-Slow: " + b"a" * DRIP_BYTES + b"\r\n")
                    self.wfile.write(b"Content-Length: 2\r\n\r\nok")
                else:
                    self.send_response(200)
                    self.send_header("Content-Length", str(DRIP_BYTES))
                    self.end_headers()
                    self._drip(b"b" * DRIP_BYTES)
                self.wfile.flush()

            def _drip(self, data: bytes) -> None:
                for i in range(len(data)):
                    if dripper.stop.wait(DRIP_INTERVAL):
                        return
                    self.wfile.write(data[i:i + 1])
                    self.wfile.flush()

            def log_message(self, *args: object) -> None:
                pass

            def handle(self) -> None:
                with contextlib.suppress(OSError):  # the client hung up mid-drip: expected
                    super().handle()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def url(self, path: str = TOKEN_PATH) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def dripper(request: pytest.FixtureRequest) -> Iterator[Dripper]:
    server = Dripper(request.param)
    yield server
    server.close()


@pytest.mark.parametrize("dripper", ["headers"], indirect=True)
def test_a_receiver_dripping_its_headers_times_out_each_post(dripper: Dripper):
    t0 = time.monotonic()
    result = alerts.post_webhook(dripper.url(), {"text": "x"}, retries=1, timeout_seconds=0.5,
                                 sleep=NO_SLEEP)
    elapsed = time.monotonic() - t0
    assert elapsed < 2.0  # two attempts of 0.5 s each, not two drips of 3 s
    assert result.delivered is False and result.attempts == 2 and dripper.posts == 2
    assert result.error == ("timeout (no complete answer within 0.5 s) posting to "
                            f"http://127.0.0.1:{dripper.server.server_address[1]}/***")
    assert "token-s3cr3t" not in result.error
    deadline = time.monotonic() + 2.0  # the abandoned worker ends with the closed client
    while _workers() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _workers() == []


def _workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "aurora-bounded-http"]


@pytest.mark.parametrize("dripper", ["body"], indirect=True)
def test_a_receiver_dripping_its_body_has_delivered_once_its_status_arrives(dripper: Dripper):
    t0 = time.monotonic()
    result = alerts.post_webhook(dripper.url(), {"text": "x"}, retries=3, timeout_seconds=0.5,
                                 sleep=NO_SLEEP)
    assert time.monotonic() - t0 < 1.0  # the 3 s body is not waited for
    assert result == alerts.Delivery(True, 1) and dripper.posts == 1


@pytest.mark.parametrize("dripper", ["body"], indirect=True)
def test_bounded_request_gives_up_on_a_dripping_body(dripper: Dripper):
    with httpx.Client() as client:
        t0 = time.monotonic()
        with pytest.raises(Overdue) as info:
            bounded_request(client, "POST", dripper.url(), seconds=0.4, json={"a": 1})
        assert time.monotonic() - t0 < 1.5
        assert str(info.value) == "no complete answer within 0.4 s"
        answer = bounded_request(client, "POST", dripper.url(), seconds=1.0,
                                 max_body_bytes=0, json={"a": 1})
        assert answer.status == 200 and answer.body == b"" and not answer.truncated


@pytest.fixture()
def quick_server() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "10")
            self.end_headers()
            self.wfile.write(b"0123456789")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/x"
    server.shutdown()
    server.server_close()


def test_bounded_request_reads_a_prompt_answer(quick_server: str):
    with httpx.Client() as client:
        answer = bounded_request(client, "GET", quick_server, seconds=5.0)
        assert (answer.status, answer.body, answer.truncated) == (200, b"0123456789", False)
        assert answer.headers["content-length"] == "10"
        short = bounded_request(client, "GET", quick_server, seconds=5.0, max_body_bytes=4)
        # (the headers are not compared: their Date changes when a second ticks between)
        assert (short.status, short.body, short.truncated) == (200, b"0123", True)
        with pytest.raises(httpx.ConnectError):  # httpx errors come through as raised
            bounded_request(client, "GET", "http://127.0.0.1:9/", seconds=5.0)
        with pytest.raises(ValueError):
            bounded_request(client, "GET", quick_server, seconds=0)
