"""Errors that reach a person.

Every error Aurora raises on bad input or a failed stage derives from `AuroraError`. Its
message is one line that names the file, symbol, row or setting at fault; the CLI prints it
without a traceback and exits with `exit_code`. Messages never contain secret values.

An error also carries the data a caller needs to act on it, so nothing has to be read back
from side files: `missing_symbols` (universe symbols the failed stage could not cover) and
`report` (the stage's JSON-able report: failed batches, validation findings).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def first_line(exc: BaseException, limit: int = 160) -> str:
    """The first non-blank line of `exc`'s message, at most `limit` characters (its type's
    name when the message is blank): what a one-line error quotes of a library's error."""
    lines = (line.strip() for line in str(exc).splitlines())
    return next((line for line in lines if line), type(exc).__name__)[:limit]


class AuroraError(Exception):
    """Base class: a one-line, user-facing failure."""

    exit_code: int = 1

    def __init__(self, message: str, *, missing_symbols: Sequence[str] = (),
                 report: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.missing_symbols: tuple[str, ...] = tuple(missing_symbols)
        self.report: dict[str, Any] | None = dict(report) if report is not None else None


class ConfigError(AuroraError):
    """A configuration value, file or environment variable is invalid."""

    exit_code = 2


class UniverseError(AuroraError):
    """A universe file is malformed (the message names the file and line)."""

    exit_code = 2


class CredentialsError(AuroraError):
    """Credentials are missing or were rejected. Names the variables, never their values."""

    exit_code = 3


class NotInstalled(AuroraError):
    """A command needs an optional part of Aurora that is not installed here."""

    exit_code = 4


class DataValidationError(AuroraError):
    """Data failed a validation check or a quality gate; nothing was published."""

    exit_code = 5


class FetchError(AuroraError):
    """The market-data API could not deliver the requested bars."""

    exit_code = 6


class StoreError(AuroraError):
    """The versioned store is missing, locked or inconsistent."""

    exit_code = 7
