"""A backup location: an fsspec filesystem and root, its index (`backup.json`) read and
checked as a whole, its blobs read verified and decrypted (`aurora.ops.backup` has the
layout and the contract).

Nothing read from a backup is trusted as a path: `check_index` accepts an index only when
its version names and file names are plain names, its blob names sha256 hex digests, its
`latest` one of its versions or absent, its nesting no deeper than Aurora writes, and its
encryption record exactly as Aurora writes it. Every error is a one-line StoreError naming
the backup (its URL without credentials) and the field at fault; an exception from a
fsspec call shows its type name only, as its message may quote credentials.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import fsspec

from aurora.atomic import atomic_write_bytes, sha256_bytes
from aurora.errors import ConfigError, CredentialsError, StoreError
from aurora.ops.crypto import Cipher, check_key_record, open_key_record
from aurora.oserrors import storage_error
from aurora.redaction import redact, redact_url
from aurora.store import MANIFEST
from aurora.store.files import plain_name, store_name

FORMAT = "aurora-backup/1"
INDEX = "backup.json"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# Aurora's backup.json nests 5 levels deep (index, versions, version, files, file); anything
# much deeper is crafted, and would make parsing or printing it recurse without bound
_MAX_INDEX_DEPTH = 32


class BackupTarget:
    """A backup location: an fsspec filesystem and root path, plus its cipher if encrypted."""

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        if not url:
            raise ConfigError("backup URL is empty")
        self.shown = redact_url(url, keep_path=True)
        options = dict(storage_options or {})
        try:
            self.fs, root = fsspec.core.url_to_fs(url, **options)
        except (ImportError, ValueError) as exc:
            # fsspec's own messages ("Protocol not known: x", "Install s3fs to access S3")
            # help; anything of the URL or the options that they might quote is masked
            reason = redact(str(exc), _secrets_of(url, options)).splitlines()[0:1]
            raise ConfigError(f"backup URL {self.shown}: "
                              f"{reason[0] if reason else type(exc).__name__}") from None
        except Exception as exc:  # a filesystem's own errors may quote its credentials
            raise StoreError(f"{self.shown}: cannot open the backup location "
                             f"({type(exc).__name__})") from None
        self.root = root.rstrip("/")
        self.local = "file" in _protocols(self.fs)
        self.cipher: Cipher | None = None

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def read(self, *parts: str) -> bytes:
        try:
            return self.fs.cat_file(self.path(*parts))
        except FileNotFoundError:
            raise StoreError(f"{self.shown}: {'/'.join(parts)} not found in the backup") from None
        except Exception as exc:  # OSError, or a filesystem's own (botocore...): the type
            # name only, as its message may quote credentials from the URL or the options
            raise StoreError(f"{self.shown}: cannot read {'/'.join(parts)} "
                             f"({type(exc).__name__})") from None

    def write(self, data: bytes, *parts: str) -> None:
        """Write an object; atomic (temp + rename) on local paths, object PUTs elsewhere."""
        path = self.path(*parts)
        try:
            if self.local:
                atomic_write_bytes(Path(path), data)
            else:
                self.fs.pipe_file(path, data)
        except OSError as exc:
            known = storage_error(exc, f"{self.shown}/{'/'.join(parts)}")
            reason = str(known) if known is not None else type(exc).__name__
            raise StoreError(f"{self.shown}: cannot write {'/'.join(parts)} ({reason})"
                             ) from None
        except Exception as exc:
            if self.local:  # Aurora's own writer: not a filesystem error, keep it as raised
                raise
            # a filesystem's own (botocore...): never its message, which may quote
            # credentials from the URL or the options
            raise StoreError(f"{self.shown}: cannot write {'/'.join(parts)} "
                             f"({type(exc).__name__})") from None

    def index(self) -> dict[str, Any] | None:
        """The parsed and checked backup.json (`check_index`), or None when the location
        holds no backup yet. StoreError (one line, naming the backup) when it cannot be
        reached or read, is not JSON, is nested too deeply or fails `check_index`."""
        try:
            if not self.fs.exists(self.path(INDEX)):
                return None
        except Exception as exc:  # OSError or a filesystem's own: the type name only
            raise StoreError(f"{self.shown}: cannot reach the backup ({type(exc).__name__})"
                             ) from None
        too_deep = f"{self.shown}: {INDEX} is not valid JSON (nested too deeply)"
        try:
            index = json.loads(self.read(INDEX))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise StoreError(f"{self.shown}: {INDEX} is not valid JSON") from None
        except RecursionError:
            raise StoreError(too_deep) from None
        if _too_deep(index, _MAX_INDEX_DEPTH):  # would recurse when checked or written back
            raise StoreError(too_deep)
        if not isinstance(index, dict) or index.get("format") != FORMAT:
            found = index.get("format") if isinstance(index, dict) else None
            raise StoreError(f"{self.shown}: {INDEX} has unknown format {found!r}")
        return check_index(index, self.shown)

    def unlock(self, index: dict[str, Any], key: str | None) -> None:
        """Set up the cipher for an existing backup (or check that none is needed)."""
        if index.get("encrypted"):
            if not key:
                raise CredentialsError(
                    f"{self.shown} is encrypted: set AURORA_BACKUP_KEY to the key used")
            self.cipher = open_key_record(key, index.get("encryption"),
                                          f"{self.shown}: {INDEX}: the encryption record")
        elif key:
            raise ConfigError(f"{self.shown} is an unencrypted backup but AURORA_BACKUP_KEY "
                              "is set: back up to a new location to encrypt, or unset the key")

    def get_blob(self, sha256: str, what: str) -> bytes:
        """A verified plaintext blob (StoreError if missing, undecryptable or corrupt, or if
        `sha256` is not a sha256 hex digest: it names a file of the backup)."""
        data = self.read("blobs", _blob_name(sha256, f"{self.shown}: blob of {what}"))
        if self.cipher is not None:
            data = self.cipher.decrypt(data, sha256, what)
        if sha256_bytes(data) != sha256:
            raise StoreError(f"{self.shown}: backup copy of {what} is corrupt (sha256 mismatch)")
        return data


def _secrets_of(url: str, options: Mapping[str, Any]) -> list[str]:
    """What an error about opening `url` must not show: its user info and query, and the
    string values of the storage options."""
    parts = urlsplit(url)
    found = [parts.username, parts.password, parts.query, parts.netloc.rpartition("@")[0],
             *(v for v in options.values() if isinstance(v, str))]
    return sorted({f for f in found if f and len(f) >= 4}, key=len, reverse=True)


def _too_deep(value: object, limit: int) -> bool:
    """True when `value` (parsed JSON) nests lists and objects more than `limit` deep;
    iterative, so it cannot itself exhaust the stack."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = (item.values() if isinstance(item, dict)
                    else item if isinstance(item, list) else None)
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _protocols(fs: Any) -> tuple[str, ...]:
    proto = fs.protocol
    return (proto,) if isinstance(proto, str) else tuple(proto)


def _blob_name(value: object, where: str) -> str:
    """`value` when it is a sha256 hex digest (the only names blobs have), else StoreError."""
    if not isinstance(value, str) or not _SHA256.match(value):
        raise StoreError(f"{where}: {str(value)[:80]!r} is not a sha256 hex digest")
    return value


def safe_name(name: object, what: str, shown: str,
          check: Callable[[object, str], str] = plain_name) -> str:
    """`plain_name` (or `check`: `store_name` for a file) with the backup named in the
    error."""
    try:
        return check(name, what)
    except StoreError as exc:
        raise StoreError(f"{shown}: {exc}") from None


def check_index(index: dict[str, Any], shown: str) -> dict[str, Any]:
    """`index` (a parsed backup.json) when every name in it is safe to use; StoreError naming
    the backup `shown` and the first field at fault otherwise (see the module docstring)."""
    versions = index.get("versions")
    if not isinstance(versions, dict):
        raise StoreError(f"{shown}: {INDEX}: `versions` is missing or not an object")
    for version, entry in versions.items():
        safe_name(version, f"version name in {INDEX}", shown)
        files = entry.get("files") if isinstance(entry, dict) else None
        if not isinstance(files, dict):
            raise StoreError(f"{shown}: {INDEX}: version {version} has no `files` object")
        _blob_name(entry.get("manifest_sha256"), f"{shown}: {INDEX}: manifest of {version}")
        for name, meta in files.items():
            if safe_name(name, f"file name in {INDEX} (version {version})", shown,
                     store_name) == MANIFEST:
                raise StoreError(f"{shown}: {INDEX}: version {version} lists a file named "
                                 f"{MANIFEST} (reserved for the manifest)")
            sha = meta.get("sha256") if isinstance(meta, dict) else None
            _blob_name(sha, f"{shown}: {INDEX}: {name} of {version}")
    latest = index.get("latest")
    if latest is not None:
        safe_name(latest, f"latest version in {INDEX}", shown)
    if index.get("encrypted"):
        _check_key_record(index.get("encryption"), shown)
    return index


def _check_key_record(record: object, shown: str) -> None:
    """The encryption record of an encrypted backup has exactly the fields Aurora writes,
    decodable and in bounds (`aurora.ops.crypto.check_key_record`); StoreError naming the
    backup and the field otherwise."""
    check_key_record(record, f"{shown}: {INDEX}: the encryption record")
