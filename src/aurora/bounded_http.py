"""HTTP requests with a total deadline: a slow or dripping server cannot hold a caller.

httpx timeouts bound each network operation (connect, one read, one write), not the
request: a server that sends a byte now and then -- in its status line, its headers or its
body -- never trips them. `bounded_request` runs the request in a worker thread and waits
for it at most `seconds` in all.

Contract:
- `bounded_request(client, method, url, seconds=S, ...)` returns the `Answer` (status,
  headers, body) once the status line and headers have arrived and the body has been read
  (at most `max_body_bytes` of it when given; 0 reads none), all within S seconds.
  Otherwise it raises `Overdue` after S seconds. httpx errors raised by the request
  (`httpx.HTTPError`: connection refused, per-operation timeouts, ...) are re-raised here.
- An overdue worker is abandoned: it stops at its next chunk, or when its per-operation
  timeout (also S) passes, or when `client` is closed; it is a daemon thread and never
  delays the caller or the interpreter's exit. Close `client` soon after an `Overdue` (or
  use a client per call) so its connection is dropped at once.
- Nothing here logs or formats the URL: callers describe failures without it (it may carry
  a token).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Answer:
    """One HTTP answer read within its deadline. `body` holds at most the bytes asked for;
    `truncated` is True when bytes past `max_body_bytes` arrived and were dropped."""

    status: int
    headers: httpx.Headers
    body: bytes
    truncated: bool = False


class Overdue(Exception):
    """The request did not complete within its total deadline (`seconds`)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no complete answer within {seconds:.3g} s")
        self.seconds = seconds


def bounded_request(client: httpx.Client, method: str, url: str, *, seconds: float,
                    max_body_bytes: int | None = None, **kwargs: Any) -> Answer:
    """Send `method url` with `client` (extra `kwargs` go to `client.stream`, e.g. `json`)
    and return its `Answer` within `seconds` (> 0), or raise `Overdue`; see the module
    docstring. `max_body_bytes`: None reads the whole body, N reads at most N bytes."""
    if not seconds > 0:
        raise ValueError("seconds must be positive")
    if max_body_bytes is not None and max_body_bytes < 0:
        raise ValueError("max_body_bytes must be None or at least 0")
    outcome: list[Answer | BaseException] = []
    done = threading.Event()
    abandoned = threading.Event()

    def work() -> None:
        try:
            with client.stream(method, url, timeout=seconds, **kwargs) as response:
                chunks: list[bytes] = []
                size = 0
                truncated = False
                if max_body_bytes != 0:
                    for chunk in response.iter_bytes():
                        if abandoned.is_set():
                            return
                        chunks.append(chunk)
                        size += len(chunk)
                        if max_body_bytes is not None and size >= max_body_bytes:
                            truncated = size > max_body_bytes
                            break
                body = b"".join(chunks)
                if max_body_bytes is not None:
                    body = body[:max_body_bytes]
                outcome.append(Answer(response.status_code, response.headers, body, truncated))
        except BaseException as exc:  # handed over to the waiting thread, as raised
            outcome.append(exc)
        finally:
            done.set()

    worker = threading.Thread(target=work, name="aurora-bounded-http", daemon=True)
    worker.start()
    if not done.wait(seconds) or not outcome:
        abandoned.set()
        raise Overdue(seconds)
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result
