"""Atomic file writes and checksums.

Every write goes to a temporary file in the destination's directory, is flushed and
fsync'd, then renamed over the destination, and the directory is fsync'd. A reader sees
either the old file or the new one, never a partial file, even if the process is killed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import polars as pl

_CHUNK = 1 << 20


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


@contextlib.contextmanager
def atomic_path(path: Path, mode: int = 0o644) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is fsync'd and renamed to `path`.

    On an exception the temporary file is removed and `path` is left as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, mode)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_with(path: Path, writer: Callable[[IO[bytes]], Any], mode: int = 0o644) -> None:
    """Atomically write `path` by calling `writer(binary_file_handle)`."""
    with atomic_path(path, mode) as tmp, open(tmp, "wb") as fh:
        writer(fh)


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Atomically replace `path` with `data`."""
    atomic_write_with(path, lambda fh: fh.write(data), mode)


def atomic_write_text(path: Path, text: str, mode: int = 0o644) -> None:
    """Atomically replace `path` with UTF-8 `text`."""
    atomic_write_bytes(path, text.encode("utf-8"), mode)


def atomic_write_json(path: Path, obj: Any, mode: int = 0o644) -> None:
    """Atomically write `obj` as indented JSON (keys in insertion order, trailing newline)."""
    atomic_write_text(path, json.dumps(obj, indent=2, default=str) + "\n", mode)


def atomic_write_parquet(path: Path, frame: pl.DataFrame, mode: int = 0o644) -> None:
    """Atomically write a polars frame as zstd-compressed Parquet."""
    with atomic_path(path, mode) as tmp:
        frame.write_parquet(tmp, compression="zstd", statistics=True)


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
