"""Opaque page tokens and keyset paging.

A token is standard base64 of a small JSON object: the sort key of the last item returned
and a fingerprint of the query parameters that define the result set (everything except
`limit` and `page_token`; alpaca-py legitimately changes `limit` between pages). Resuming
is keyset-based ("strictly after the last key"), so pages never duplicate or skip an item
even if a bar is revised between two calls. A token presented with different parameters,
the literal string `null`, or anything undecodable raises ParamError (HTTP 400).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from aurora_testbed.emulator.params import ParamError

TOKEN_VERSION = 1


def fingerprint(route: str, params: Mapping[str, Any]) -> str:
    """A short stable hash of `route` and the canonical parameters."""
    canonical = json.dumps([route, sorted((k, str(v)) for k, v in params.items())],
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


def encode_token(key: list[Any], query_fingerprint: str) -> str:
    """The opaque token that resumes strictly after `key`."""
    payload = json.dumps({"v": TOKEN_VERSION, "k": key, "q": query_fingerprint},
                         separators=(",", ":"))
    return base64.b64encode(payload.encode()).decode()


def decode_token(token: str, query_fingerprint: str) -> list[Any]:
    """The key stored in `token`; ParamError unless it was issued for the same query."""
    if token == "null":
        raise ParamError("invalid page_token: the literal 'null' is not a token (omit it)")
    try:
        payload = json.loads(base64.b64decode(token.encode(), validate=True))
        key, issued_for, version = payload["k"], payload["q"], payload["v"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise ParamError("invalid page_token") from None
    if version != TOKEN_VERSION or not isinstance(key, list):
        raise ParamError("invalid page_token")
    if issued_for != query_fingerprint:
        raise ParamError("invalid page_token: it was issued for different query parameters")
    return key
