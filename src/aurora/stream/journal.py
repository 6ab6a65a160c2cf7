"""A crash-safe append log of the stream's messages, replayed after a restart.

Each batch of messages is appended as JSON lines (the `t` of a bar or a status as
RFC-3339 text) and fsynced before the next frame is read, so a `kill -9` loses at most the
frame being written. `replay` reads the log back; a last line cut off by the crash (no
newline, or not JSON) is dropped, while a bad line anywhere else is corruption and names
its line.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aurora.stream.protocol import TIMED_TYPES, StreamProtocolError, parse_timestamp


def _line(message: dict[str, Any]) -> str:
    if isinstance(message.get("t"), dt.datetime):
        message = {**message, "t": message["t"].isoformat().replace("+00:00", "Z")}
    return json.dumps(message, separators=(",", ":"), sort_keys=True) + "\n"


class Journal:
    """The append log at `path` (created owner-only when missing)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def append(self, messages: Iterable[dict[str, Any]]) -> int:
        """Append and fsync `messages`; returns how many were written. A line a crash cut
        off is cut away first, so it never ends up in the middle of the log."""
        lines = [_line(m) for m in messages]
        if not lines:
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._drop_torn_tail()
        data = "".join(lines).encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
        return len(lines)

    def _drop_torn_tail(self) -> None:
        """Cut a last line without its newline; reads only the end of the log (a journal
        grows all day: reading it whole on every frame would cost more each minute)."""
        try:
            fh = self.path.open("r+b")
        except FileNotFoundError:
            return
        with fh:
            size = fh.seek(0, os.SEEK_END)
            if size == 0:
                return
            fh.seek(size - 1)
            if fh.read(1) == b"\n":
                return
            end = size
            while end > 0:  # back to the last newline, a block at a time
                start = max(0, end - 65_536)
                fh.seek(start)
                found = fh.read(end - start).rfind(b"\n")
                if found >= 0:
                    end = start + found + 1
                    break
                end = start
            fh.truncate(end)
            fh.flush()
            os.fsync(fh.fileno())

    def replay(self) -> list[dict[str, Any]]:
        """Every complete message in the log, in order (the `t` of bars and statuses as
        aware datetimes)."""
        if not self.path.exists():
            return []
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        out = []
        for number, raw in enumerate(lines, start=1):
            if not raw:
                continue
            last = number == len(lines)  # no newline after it: cut off mid-write
            try:
                message = json.loads(raw)
            except ValueError as exc:
                if last:
                    break
                raise StreamProtocolError(f"{self.path}: line {number} is not JSON "
                                          f"({exc})") from exc
            if last:
                break  # parsable, but its newline never reached the disk: not confirmed
            if message.get("T") in TIMED_TYPES and "t" in message:
                message["t"] = parse_timestamp(message["t"])
            out.append(message)
        return out
