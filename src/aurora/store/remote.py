"""A published version copied to, and read from, any fsspec location (a shared filesystem,
`s3://bucket/prefix`): how a machine without the data directory reads a version, and the
first step for cluster workers that read their inputs from the store (docs/scale-out.md).

Layout at the location: `<url>/archive/<version>/<name>` for every file of the version's
manifest (datasets as their parts, `features/year=2018/part-0.parquet`), and the manifest
itself, copied last, so a version whose manifest is there is whole.

Contract:
- `export_version` copies each file once it matches the local manifest (StoreError naming
  it otherwise); a file already at the location with the manifest's sha256 is not copied
  again.
- `RemoteVersion.read_dataset` opens only the parts whose year overlaps [start, end], reads
  each part's bytes once, checks them against the manifest's sha256 (StoreError naming the
  part and the location when they differ) and parses them from memory.
- Storage options (endpoint, keys) go to fsspec as given and never appear in a message;
  URLs are shown without credentials.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

import polars as pl

from aurora.atomic import sha256_bytes
from aurora.errors import StoreError
from aurora.redaction import redact_url
from aurora.schemas import TableSchema, sorted_by_key
from aurora.store.datasets import parts_between
from aurora.store.files import MANIFEST
from aurora.store.manifest import Manifest
from aurora.store.versions import CORRUPT_HINT, Store

T = TypeVar("T")


def _filesystem(url: str, storage_options: Mapping[str, Any] | None) -> tuple[Any, str]:
    import fsspec

    shown = redact_url(url, keep_path=True)
    if "?" in url or "#" in url:
        raise StoreError(f"{shown}: a store location has no query or fragment (pass "
                         "credentials as storage options)")
    try:
        fs, root = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
    except Exception as exc:  # its message may quote the options' credentials
        raise StoreError(f"{shown}: cannot open ({type(exc).__name__})") from None
    return fs, root.rstrip("/")


def _io(shown: str, what: str, action: Callable[[], T]) -> T:
    """`action()`, a filesystem's own error turned into a StoreError naming `what` at
    `shown` and the error's type only (its message may quote a URL with credentials)."""
    try:
        return action()
    except FileNotFoundError:
        raise StoreError(f"{shown}: {what} not found") from None
    except StoreError:
        raise
    except Exception as exc:
        raise StoreError(f"{shown}: {what}: {type(exc).__name__}") from None


def export_version(store: Store, version: str, url: str,
                   storage_options: Mapping[str, Any] | None = None) -> list[str]:
    """Copy `version` of `store` to `url` (module docstring); returns the names copied."""
    fs, root = _filesystem(url, storage_options)
    shown = redact_url(url, keep_path=True)
    manifest = store.manifest(version)
    base = f"{root}/archive/{version}"
    copied = []
    for name, entry in sorted(manifest.files.items()):
        target = f"{base}/{name}"
        if _io(shown, name, lambda t=target, e=entry: fs.exists(t) and fs.size(t) == e.bytes
               and sha256_bytes(fs.cat_file(t)) == e.sha256):
            continue
        data = (store.archive / version / name).read_bytes()
        if sha256_bytes(data) != entry.sha256:  # the bytes sent are the bytes checked
            raise StoreError(f"{name} of version {version} does not match its manifest "
                             f"(changed or corrupt): {CORRUPT_HINT}")
        _io(shown, name, lambda t=target, d=data: _write(fs, t, d))
        copied.append(name)
    _io(shown, MANIFEST, lambda: _write(fs, f"{base}/{MANIFEST}",
                                        (store.archive / version / MANIFEST).read_bytes()))
    return copied


def _write(fs: Any, path: str, data: bytes) -> None:
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)  # a local or shared filesystem
    fs.pipe_file(path, data)


class RemoteVersion:
    """One version at an fsspec location, read-only (module docstring)."""

    def __init__(self, url: str, version: str,
                 storage_options: Mapping[str, Any] | None = None) -> None:
        self.fs, root = _filesystem(url, storage_options)
        self.version, self.shown = version, redact_url(url, keep_path=True)
        self.base = f"{root}/archive/{version}"
        self.manifest = Manifest.parse(self._read(MANIFEST), f"{self.shown} {version}")
        if self.manifest.version != version:
            raise StoreError(f"{self.shown}: the manifest under version {version} is the one "
                             f"of version {self.manifest.version}")

    def _read(self, name: str) -> bytes:
        return _io(self.shown, f"{name} of version {self.version}",
                   lambda: self.fs.cat_file(f"{self.base}/{name}"))

    def verified_bytes(self, name: str) -> bytes:
        """The bytes of file `name`, once they match the manifest's sha256."""
        entry = self.manifest.file(name)
        if entry is None:
            raise StoreError(f"version {self.version} at {self.shown} holds no {name}")
        data = self._read(name)
        if sha256_bytes(data) != entry.sha256:
            raise StoreError(f"{name} of version {self.version} at {self.shown} does not "
                             "match its manifest (changed or corrupt)")
        return data

    def read_dataset(self, dataset: str, schema: TableSchema, *,
                     start: dt.date | None = None, end: dt.date | None = None,
                     symbols: Collection[str] | None = None) -> pl.DataFrame:
        """The rows of `dataset` dated within [start, end] and of `symbols` (None: all),
        sorted by (symbol, date), from the parts that range needs, each checked."""
        parts = parts_between(self.manifest, dataset, start, end)
        if not parts:
            raise StoreError(f"version {self.version} at {self.shown} holds no {dataset} "
                             f"between {start} and {end}")
        frames = []
        for name in parts:
            frame = pl.read_parquet(io.BytesIO(self.verified_bytes(name)))
            problems = schema.problems(frame.schema)
            if problems:
                raise StoreError(f"{name} of version {self.version} at {self.shown}: "
                                 f"{problems[0]}")
            if start is not None:
                frame = frame.filter(pl.col("date") >= start)
            if end is not None:
                frame = frame.filter(pl.col("date") <= end)
            if symbols is not None:
                frame = frame.filter(pl.col("symbol").is_in(sorted(set(symbols))))
            frames.append(frame)
        return sorted_by_key(pl.concat(frames))
