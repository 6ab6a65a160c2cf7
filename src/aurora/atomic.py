"""Atomic file writes and checksums.

Every write goes to a temporary file in the destination's directory, is flushed and
fsync'd, then renamed over the destination, and the directory is fsync'd. A reader sees
either the old file or the new one, never a partial file, even if the process is killed.

Permissions do not depend on the umask: a file written here gets exactly `mode` (default
owner-only 0600), and the directories created on the way get exactly their mode (default
owner-only 0700, see `private_dir`). Directories that already exist are left as they are.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Literal

import polars as pl

from aurora.oserrors import storage_error

_CHUNK = 1 << 20
FILE_MODE = 0o600  # files: owner-only
DIR_MODE = 0o700  # directories: owner-only


def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename inside it survives a crash (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def private_dir(path: Path, mode: int = DIR_MODE) -> Path:
    """Create directory `path` and its missing parents, each with exactly `mode` whatever
    the umask (default owner-only 0700); return `path`.

    Directories that already exist keep their mode (one created meanwhile by another
    process included). FileExistsError when `path` exists and is not a directory.
    """
    path = Path(path)
    missing: list[Path] = []
    probe = path
    while not probe.is_dir() and probe.parent != probe:
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, mode)
        except FileExistsError:
            if not directory.is_dir():
                raise
            continue
        os.chmod(directory, mode)  # mkdir's mode is filtered by the umask; chmod is not
    return path


@contextlib.contextmanager
def atomic_path(path: Path, mode: int = FILE_MODE) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is fsync'd, given `mode` (default
    owner-only 0600) and renamed to `path`. Missing parent directories are created
    owner-only (`private_dir`).

    On an exception the temporary file is removed and `path` is left as it was. A full
    device, a read-only file system or a denied write is a one-line StoreError naming
    `path` (`aurora.oserrors.storage_error`); any other exception propagates unchanged.
    """
    try:
        private_dir(path.parent)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        _raise_storage_error(exc, path)
        raise
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, mode)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        _raise_storage_error(exc, path)
        raise


def _raise_storage_error(exc: BaseException, path: Path) -> None:
    """Raise the one-line StorageError when `exc` is a full device, a read-only file system
    or a denied write of `path`; return (the caller re-raises `exc`) otherwise."""
    error = storage_error(exc, path)
    if error is not None and error is not exc:
        raise error from None


def atomic_write_with(path: Path, writer: Callable[[IO[bytes]], Any],
                      mode: int = FILE_MODE) -> None:
    """Atomically write `path` by calling `writer(binary_file_handle)`."""
    with atomic_path(path, mode) as tmp, open(tmp, "wb") as fh:
        writer(fh)


def atomic_write_bytes(path: Path, data: bytes, mode: int = FILE_MODE) -> None:
    """Atomically replace `path` with `data`."""
    atomic_write_with(path, lambda fh: fh.write(data), mode)


def atomic_write_text(path: Path, text: str, mode: int = FILE_MODE) -> None:
    """Atomically replace `path` with UTF-8 `text`."""
    atomic_write_bytes(path, text.encode("utf-8"), mode)


def atomic_write_json(path: Path, obj: Any, mode: int = FILE_MODE) -> None:
    """Atomically write `obj` as indented JSON (keys in insertion order, trailing newline)."""
    atomic_write_text(path, json.dumps(obj, indent=2, default=str) + "\n", mode)


def atomic_write_parquet(path: Path, frame: pl.DataFrame, mode: int = FILE_MODE,
                         compression: Literal["zstd", "lz4"] = "zstd",
                         row_group_rows: int | None = None) -> None:
    """Atomically write a polars frame as Parquet with column statistics. zstd (level 1,
    within 1% of the default level's size in half its time) suits bars, whose values repeat;
    lz4 suits noisy floats such as features, which no codec shrinks by much, and writes
    and reads them several times faster (docs/build-engine.md). `row_group_rows`: rows
    per row group (None: polars' default)."""
    with atomic_path(path, mode) as tmp:
        frame.write_parquet(tmp, compression=compression,
                            compression_level=1 if compression == "zstd" else None,
                            statistics=True, row_group_size=row_group_rows)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of `data`."""
    return hashlib.sha256(data).hexdigest()
