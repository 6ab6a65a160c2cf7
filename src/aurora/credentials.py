"""Sanity checks of credential values, made before any request is sent.

`credential_problem(value)` says what is wrong with a credential as a short phrase that
never quotes the value ("has leading or trailing whitespace (a stray space or newline?)"),
or returns None when it looks usable. Alpaca key ids and secrets are printable ASCII without
spaces; anything else would either be rejected by the server as wrong credentials or break
the HTTP header (and then look like a network problem).
"""

from __future__ import annotations


def credential_problem(value: str) -> str | None:
    """A phrase naming what is wrong with `value` (never the value itself), or None."""
    if value != value.strip():
        return "has leading or trailing whitespace (a stray space or newline?)"
    if any(ch.isspace() for ch in value):
        return "contains whitespace"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return "contains a control character"
    if not value.isascii():
        return "contains a non-ASCII character"
    return None
