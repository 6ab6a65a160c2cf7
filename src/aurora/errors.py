"""Errors that reach a person.

Every error Aurora raises on bad input or a failed stage derives from `AuroraError`. Its
message is one line that names the file, symbol, row or setting at fault; the CLI prints it
without a traceback and exits with `exit_code`. Messages never contain secret values.
"""

from __future__ import annotations


class AuroraError(Exception):
    """Base class: a one-line, user-facing failure."""

    exit_code: int = 1


class ConfigError(AuroraError):
    """A configuration value, file or environment variable is invalid."""

    exit_code = 2


class UniverseError(AuroraError):
    """A universe file is malformed (the message names the file and line)."""

    exit_code = 2


class CredentialsError(AuroraError):
    """Credentials are missing or were rejected. Names the variables, never their values."""

    exit_code = 3


class StageNotAvailable(AuroraError):
    """A command whose stage is not built yet."""

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
