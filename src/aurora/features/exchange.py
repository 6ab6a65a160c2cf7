"""Where an out-of-core build's processes hand each other files: the bars by year that the
scan writes for the tasks, and the features part each task writes for the command.

An `Exchange` is one build's directory: by default `state/scratch/<build>` of the store
(workers must then see the store's filesystem: one machine, or a shared filesystem mounted
at the same path), or `<url>/<build>` under an fsspec URL (`compute.exchange`, for example
`s3://bucket/aurora-exchange`), for workers that share only object storage. Credentials
for a URL come from each process's own environment (`AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT_URL` for S3), never from Aurora's configuration, and
no message quotes more of a URL than its scheme, host and path.

Contract: `write` stores a frame whole under a relative name (a local file is written to a
temporary name, owner-only, and renamed; an object store's put is whole by itself), so a
retried task never leaves a torn file; `read` concatenates the named files; `fetch` brings a
file to a local path (a rename when local); `remove` deletes the build's directory and is
safe to repeat. Filesystem errors become StoreError naming the file and the error's type.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import polars as pl

from aurora.atomic import FILE_MODE, private_dir
from aurora.errors import StoreError
from aurora.redaction import redact_url

STALE_S = 24 * 3600  # local build directories untouched this long were left by killed builds
T = TypeVar("T")


@dataclass(frozen=True)
class Exchange:
    """One build's exchange directory: a local path or an fsspec URL (module docstring)."""

    location: str

    @classmethod
    def open(cls, local_root: Path, url: str | None = None) -> Exchange:
        """A new build directory under `url`, or under `local_root` when `url` is None (local
        directories there untouched for a day, left by killed builds, are removed first).
        StoreError for a URL with a query or fragment."""
        name = uuid.uuid4().hex
        if url is None:
            _remove_stale(local_root)
            return cls(str(private_dir(local_root / name)))
        if "?" in url or "#" in url:
            raise StoreError(f"{redact_url(url, keep_path=True)}: an exchange location has no "
                             "query or fragment (credentials come from the environment)")
        return cls(f"{url.rstrip('/')}/{name}")

    @property
    def remote(self) -> bool:
        return "://" in self.location

    def write(self, frame: pl.DataFrame, name: str) -> None:
        """Store `frame` as Parquet (lz4) at `name` (relative, `/`-separated)."""
        if not self.remote:
            path = Path(self.location) / name
            private_dir(path.parent)
            partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
            frame.write_parquet(partial, compression="lz4", statistics=True)
            os.chmod(partial, FILE_MODE)
            os.replace(partial, path)  # not fsynced: publishing fsyncs what it takes
            return
        fs, root = self._fs()

        def put() -> None:
            with fs.open(f"{root}/{name}", "wb") as fh:
                frame.write_parquet(fh, compression="lz4", statistics=True)
        self._io(name, put)

    def files(self, folders: Sequence[str]) -> list[str]:
        """The names of the Parquet files in `folders` (relative; missing ones: none)."""
        if not self.remote:
            base = Path(self.location)
            return sorted(f"{folder}/{p.name}" for folder in folders
                          for p in (base / folder).glob("*.parquet"))
        fs, root = self._fs()
        found = self._io("listing", lambda: [p for folder in folders
                                             for p in fs.glob(f"{root}/{folder}/*.parquet")])
        return sorted(p[len(root) + 1:] for p in found)

    def read(self, names: Sequence[str]) -> pl.DataFrame:
        """The rows of the files `names`, concatenated in that order."""
        if not self.remote:
            return pl.read_parquet([str(Path(self.location) / n) for n in names])
        fs, root = self._fs()

        def load(name: str) -> pl.DataFrame:
            with fs.open(f"{root}/{name}", "rb") as fh:
                return pl.read_parquet(fh)
        return pl.concat([self._io(n, lambda n=n: load(n)) for n in names])

    def fetch(self, name: str, local: Path) -> Path:
        """File `name` at the local path `local` (moved when the exchange is local)."""
        if not self.remote:
            os.replace(Path(self.location) / name, local)
            return local
        fs, root = self._fs()
        self._io(name, lambda: fs.get(f"{root}/{name}", str(local)))
        os.chmod(local, FILE_MODE)
        return local

    def remove(self) -> None:
        """Delete the build's directory (best effort: a leftover costs only space)."""
        if not self.remote:
            shutil.rmtree(self.location, ignore_errors=True)
            return
        try:
            fs, root = self._fs()
            fs.rm(root, recursive=True)
        except Exception:
            pass

    def _fs(self) -> tuple[Any, str]:
        import fsspec

        try:
            fs, root = fsspec.core.url_to_fs(self.location)
        except Exception as exc:  # its message may quote the URL's credentials
            raise StoreError(f"{self.shown}: cannot open ({type(exc).__name__})") from None
        return fs, str(root).rstrip("/")

    def _io(self, what: str, action: Callable[[], T]) -> T:
        try:
            return action()
        except Exception as exc:  # a filesystem's message may quote a signed URL
            raise StoreError(f"{what} at {self.shown}: {type(exc).__name__}") from None

    @property
    def shown(self) -> str:
        return redact_url(self.location, keep_path=True) if self.remote else self.location


def _remove_stale(root: Path) -> None:
    if not root.is_dir():
        return
    now = time.time()
    for entry in root.iterdir():
        try:
            if entry.is_dir() and now - entry.stat().st_mtime > STALE_S:
                shutil.rmtree(entry, ignore_errors=True)
        except OSError:
            continue
