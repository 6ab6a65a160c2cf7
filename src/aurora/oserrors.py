"""Operating-system failures as one-line messages: the one translation of OSError.

- `storage_error(exc, path)` is the `StorageError` for a write of `path` that failed
  because the device is full, the quota is used up, the file system is read-only, the file
  is too large or permission was denied ("no space left on device while writing <path>"),
  or None for any other exception, which keeps its own type. It understands an OSError and
  the Parquet writer's error, which polars raises as a PolarsError ending "(os error 28)".
- `StorageError` is both a StoreError (one line, exit code 7) and an OSError with the
  errno, so code that tolerates a failed best-effort write (`suppress(OSError)`) still does.
- `describe_os_error(exc)` is the one line for any OSError: "<file>: <reason>".

`aurora.atomic.atomic_path` (every file Aurora writes) uses the first; the CLI uses the
second for any OSError that reaches it (exit code 7, like StoreError).
"""

from __future__ import annotations

import errno
import re
from pathlib import Path

import polars as pl

from aurora.errors import StoreError

# errno -> what a person reads; the failures that mean "this storage cannot take the write"
STORAGE_REASONS: dict[int, str] = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EFBIG: "file too large for this file system or process limit",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}
_ERRNO_IN_TEXT = re.compile(r"\(os error (\d+)\)|\[Errno (\d+)\]")


class StorageError(StoreError, OSError):
    """A write the storage could not take (full, read-only, denied); `errno` says which."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.errno = code


def _one_line(text: str) -> str:
    return " ".join(text.split())


def storage_errno(exc: BaseException) -> int | None:
    """The errno of `exc` when it is a storage failure (`STORAGE_REASONS`), else None.

    Looks at `OSError.errno`, then at the message of an OSError or PolarsError (the Parquet
    writer reports its IO errors as text only).
    """
    if not isinstance(exc, OSError | pl.exceptions.PolarsError):
        return None
    code = exc.errno if isinstance(exc, OSError) else None
    if code is None:
        match = _ERRNO_IN_TEXT.search(str(exc))
        code = int(match.group(1) or match.group(2)) if match else None
    return code if code in STORAGE_REASONS else None


def storage_error(exc: BaseException, path: Path | str,
                  doing: str = "writing") -> StorageError | None:
    """`StorageError("<reason> while <doing> <path>")` for a storage failure, else None
    (`exc` itself when it already is one)."""
    if isinstance(exc, StorageError):
        return exc
    code = storage_errno(exc)
    if code is None:
        return None
    return StorageError(f"{STORAGE_REASONS[code]} while {doing} {path}", code)


def describe_os_error(exc: OSError) -> str:
    """One line for any OSError: the file(s) it names, then the reason."""
    reason = STORAGE_REASONS.get(exc.errno or -1) or exc.strerror or str(exc)
    reason = _one_line(reason) or type(exc).__name__
    files = [str(f) for f in (exc.filename, exc.filename2) if f is not None]
    return f"{' -> '.join(files)}: {reason}" if files else reason
