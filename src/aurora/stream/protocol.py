"""The message contract of Alpaca's market-data stream (docs: alpaca-market-data-api.md §7).

Every server frame is an array of messages: JSON text, or binary msgpack when the client
asked for it on the upgrade (`Content-Type: application/msgpack`), where the `t` of a bar
or a trading status is a msgpack Timestamp. `decode` turns either into plain dicts with
that `t` as an aware UTC datetime. Control messages (`success`, `error`, `subscription`)
come alone; data may be batched. `classify_error` says what a client must do with each
documented error code.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import msgpack

from aurora.errors import AuroraError

BAR_TYPES = {"b": "bar", "u": "updated_bar", "d": "daily_bar"}
STATUS_TYPE = "s"  # a trading status (halt, resumption, ...): `aurora.stream.market`
TIMED_TYPES = (*BAR_TYPES, STATUS_TYPE)  # the messages kept, whose `t` is a time
CHANNELS = ("bars", "updatedBars", "dailyBars", "statuses")

Action = Literal["fatal", "reconnect", "wait_and_reconnect", "ignore"]


class StreamProtocolError(AuroraError):
    """A frame that is not the stream's contract (not an array of objects, a bar without
    its fields): the message names what was wrong."""


@dataclass(frozen=True)
class ErrorRule:
    """What to do with one error code, and why (for the one-line message)."""

    action: Action
    meaning: str


# Fatal: retrying cannot help (bad keys, a plan or feed that does not allow it, a bug in
# the client). 406 is another connection holding the plan's only slot: wait, then retry.
ERROR_RULES: dict[int, ErrorRule] = {
    400: ErrorRule("fatal", "invalid syntax: the client sent a malformed message"),
    401: ErrorRule("fatal", "not authenticated: the client subscribed before auth"),
    402: ErrorRule("fatal", "auth failed: check APCA_API_KEY_ID and APCA_API_SECRET_KEY"),
    403: ErrorRule("ignore", "already authenticated"),
    404: ErrorRule("reconnect", "auth timeout: no auth within 10 seconds"),
    405: ErrorRule("fatal", "symbol limit exceeded: subscribe fewer symbols or a larger "
                            "plan"),
    406: ErrorRule("wait_and_reconnect", "connection limit exceeded: another connection "
                                         "uses the plan's stream"),
    407: ErrorRule("reconnect", "slow client: messages were not read fast enough"),
    408: ErrorRule("fatal", "v2 not enabled"),
    409: ErrorRule("fatal", "insufficient subscription: the plan does not include this "
                            "feed"),
    410: ErrorRule("fatal", "invalid subscribe action for this feed"),
    411: ErrorRule("fatal", "insufficient scope (OAuth token)"),
    500: ErrorRule("reconnect", "internal server error"),
}


def classify_error(code: int) -> ErrorRule:
    """The rule of a documented code; an unknown code reconnects (the server may recover)."""
    return ERROR_RULES.get(code, ErrorRule("reconnect", f"undocumented error {code}"))


def parse_timestamp(value: Any) -> dt.datetime:
    """A bar's or a status's `t`: RFC-3339 text or a msgpack Timestamp, as an aware UTC datetime."""
    if isinstance(value, msgpack.Timestamp):
        return value.to_datetime().astimezone(dt.UTC)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise StreamProtocolError(f"timestamp {value!r} is not RFC-3339") from exc
        if parsed.tzinfo is None:
            raise StreamProtocolError(f"timestamp {value!r} has no time zone")
        return parsed.astimezone(dt.UTC)
    raise StreamProtocolError(f"timestamp {value!r} is neither RFC-3339 text nor a msgpack "
                              "Timestamp")


def decode(frame: str | bytes) -> list[dict[str, Any]]:
    """The messages of one frame (text: JSON, bytes: msgpack), each a dict; the `t` of a
    bar or a status (TIMED_TYPES) as an aware UTC datetime. StreamProtocolError for
    anything but an array of objects."""
    try:
        if isinstance(frame, bytes | bytearray):
            body = msgpack.unpackb(frame, raw=False, timestamp=0)
        else:
            body = json.loads(frame)
    except (ValueError, msgpack.UnpackException) as exc:
        raise StreamProtocolError(f"undecodable stream frame: {exc}") from exc
    if not isinstance(body, list) or not all(isinstance(m, dict) for m in body):
        raise StreamProtocolError(f"stream frame is not an array of objects: "
                                  f"{str(body)[:80]}")
    out = []
    for message in body:
        if message.get("T") in TIMED_TYPES and "t" in message:
            message = {**message, "t": parse_timestamp(message["t"])}
        out.append(message)
    return out


def encode(message: dict[str, Any], *, use_msgpack: bool) -> str | bytes:
    """A client message in the connection's framing."""
    if use_msgpack:
        return msgpack.packb(message, use_bin_type=True)
    return json.dumps(message, separators=(",", ":"))


def auth_message(key: str, secret: str) -> dict[str, str]:
    """The auth action (sent within 10 s of `connected`). Never log it."""
    return {"action": "auth", "key": key, "secret": secret}


def subscribe_message(symbols: Sequence[str], channels: Sequence[str] = CHANNELS,
                      *, action: str = "subscribe") -> dict[str, Any]:
    """`subscribe` (or `unsubscribe`) of `symbols` on each of `channels`. ValueError for a
    channel this client does not handle."""
    unknown = [c for c in channels if c not in CHANNELS]
    if unknown:
        raise ValueError(f"unknown stream channel(s): {', '.join(unknown)}")
    return {"action": action, **{c: sorted(set(symbols)) for c in channels}}
