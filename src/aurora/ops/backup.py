"""Backups of the versioned store to a local path or any fsspec URL, and verified restores.

Layout at the backup URL (content-addressed: a file shared by many versions is stored once)::

    backup.json                         format, encryption record, latest, every version's
                                        files with their sha256 and size (written last)
    versions/<version>/manifest.json    the store manifest of the version, byte for byte
    blobs/<sha256>                      file contents (encrypted when a key is configured)

Contract:
- Checksums everywhere are of the plaintext. A blob is trusted only once `backup.json`
  references it; a killed backup leaves the previous `backup.json` valid and its partial
  blobs are rewritten next time.
- Only versions whose files match their manifest are backed up; a corrupt `latest` stops
  the backup with an error naming the file.
- `restore_version` downloads into a staging directory (or repairs the files of an existing
  version that are missing or corrupt), verifies every sha256 before anything is placed,
  then points `latest` at the restored version.
- Encryption (`config.ops.backup_key`, env `AURORA_BACKUP_KEY`) is fixed when the backup is
  created: an encrypted backup needs the same key to add to or restore from, and a plain
  backup cannot silently become partly encrypted.
- URLs are shown without credentials; storage options (e.g. `endpoint_url`, `key`, `secret`
  for s3fs) are passed to fsspec as given and never printed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec

from aurora.atomic import atomic_write_bytes, fsync_dir, sha256_bytes, sha256_file
from aurora.errors import ConfigError, CredentialsError, StoreError
from aurora.ops.crypto import Cipher, new_key_record, open_key_record
from aurora.redaction import redact_url
from aurora.store import MANIFEST, FileEntry, Manifest, Store

FORMAT = "aurora-backup/1"
INDEX = "backup.json"


@dataclass
class BackupReport:
    url: str
    encrypted: bool
    versions_added: list[str] = field(default_factory=list)
    versions_skipped: list[str] = field(default_factory=list)  # corrupt, not backed up
    versions_total: int = 0
    blobs_uploaded: int = 0
    bytes_uploaded: int = 0
    blobs_reused: int = 0

    def summary_lines(self) -> list[str]:
        lines = [f"backup {self.url}{' (encrypted)' if self.encrypted else ''}: "
                 f"{len(self.versions_added)} version(s) added, {self.versions_total} in total",
                 f"  {self.blobs_uploaded} file(s) uploaded ({self.bytes_uploaded:,} bytes), "
                 f"{self.blobs_reused} already present"]
        lines += [f"  skipped corrupt version {v} (run `aurora validate`)"
                  for v in self.versions_skipped]
        return lines


@dataclass
class RestoreReport:
    url: str
    version: str
    files_verified: int = 0
    files_downloaded: list[str] = field(default_factory=list)
    bytes_downloaded: int = 0
    latest: str | None = None

    def summary_lines(self) -> list[str]:
        fixed = (f"{len(self.files_downloaded)} file(s) restored "
                 f"({self.bytes_downloaded:,} bytes): {', '.join(self.files_downloaded)}"
                 if self.files_downloaded else "nothing needed restoring")
        return [f"restored {self.version} from {self.url}: {fixed}",
                f"  {self.files_verified} file(s) verified against their sha256; "
                f"latest -> {self.latest}"]


class BackupTarget:
    """A backup location: an fsspec filesystem and root path, plus its cipher if encrypted."""

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        if not url:
            raise ConfigError("backup URL is empty")
        self.shown = redact_url(url, keep_path=True)
        try:
            self.fs, root = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
        except (ImportError, ValueError) as exc:
            raise ConfigError(f"backup URL {self.shown}: {exc}") from None
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
        except OSError as exc:
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
            raise StoreError(f"{self.shown}: cannot write {'/'.join(parts)} "
                             f"({type(exc).__name__})") from None

    def index(self) -> dict[str, Any] | None:
        """The parsed backup.json, or None when the location holds no backup yet."""
        try:
            if not self.fs.exists(self.path(INDEX)):
                return None
        except OSError as exc:
            raise StoreError(f"{self.shown}: cannot reach the backup ({type(exc).__name__})"
                             ) from None
        try:
            index = json.loads(self.read(INDEX))
        except json.JSONDecodeError:
            raise StoreError(f"{self.shown}: {INDEX} is not valid JSON") from None
        if index.get("format") != FORMAT:
            raise StoreError(f"{self.shown}: {INDEX} has unknown format {index.get('format')!r}")
        return index

    def unlock(self, index: dict[str, Any], key: str | None) -> None:
        """Set up the cipher for an existing backup (or check that none is needed)."""
        if index.get("encrypted"):
            if not key:
                raise CredentialsError(
                    f"{self.shown} is encrypted: set AURORA_BACKUP_KEY to the key used")
            self.cipher = open_key_record(key, index["encryption"])
        elif key:
            raise ConfigError(f"{self.shown} is an unencrypted backup but AURORA_BACKUP_KEY "
                              "is set: back up to a new location to encrypt, or unset the key")

    def get_blob(self, sha256: str, what: str) -> bytes:
        """A verified plaintext blob (StoreError if missing, undecryptable or corrupt)."""
        data = self.read("blobs", sha256)
        if self.cipher is not None:
            data = self.cipher.decrypt(data, sha256, what)
        if sha256_bytes(data) != sha256:
            raise StoreError(f"{self.shown}: backup copy of {what} is corrupt (sha256 mismatch)")
        return data


def _protocols(fs: Any) -> tuple[str, ...]:
    proto = fs.protocol
    return (proto,) if isinstance(proto, str) else tuple(proto)


def backup_store(store: Store, url: str, *, key: str | None = None,
                 storage_options: Mapping[str, Any] | None = None) -> BackupReport:
    """Copy every verified version of `store` not yet in the backup at `url`."""
    target = BackupTarget(url, storage_options)
    index = target.index()
    if index is None:
        index = {"format": FORMAT, "encrypted": bool(key), "versions": {}}
        if key:
            target.cipher, index["encryption"] = new_key_record(key)
    else:
        target.unlock(index, key)
    report = BackupReport(target.shown, bool(index["encrypted"]))
    known = {meta["sha256"] for v in index["versions"].values() for meta in v["files"].values()}
    with store.lock():
        current = store.current_version()
        if current is None:
            raise StoreError(f"{store.root}: nothing to back up (the store is empty)")
        for version in store.versions():
            if version in index["versions"]:
                continue
            problems = store.verify(version)
            if problems:
                if version == current:
                    raise StoreError(f"latest version {version} is corrupt, not backed up: "
                                     f"{problems[0]} (restore it first: `aurora restore`)")
                report.versions_skipped.append(version)
                continue
            manifest_bytes = (store.archive / version / MANIFEST).read_bytes()
            manifest = Manifest.parse(manifest_bytes, f"{version}/{MANIFEST}")
            for name, entry in sorted(manifest.files.items()):
                sha = entry.sha256
                if sha in known:
                    report.blobs_reused += 1
                    continue
                data = (store.archive / version / name).read_bytes()
                if sha256_bytes(data) != sha:  # changed since verify: refuse to store it
                    raise StoreError(f"{name} of {version} changed during the backup")
                blob = target.cipher.encrypt(data, sha) if target.cipher else data
                target.write(blob, "blobs", sha)
                known.add(sha)
                report.blobs_uploaded += 1
                report.bytes_uploaded += len(blob)
            target.write(manifest_bytes, "versions", version, MANIFEST)
            index["versions"][version] = {
                "created_at": manifest.created_at.isoformat(), "stage": manifest.stage,
                "manifest_sha256": sha256_bytes(manifest_bytes),
                "files": {n: {"sha256": e.sha256, "bytes": e.bytes}
                          for n, e in manifest.files.items()},
            }
            report.versions_added.append(version)
        index["latest"] = current
    index["updated_at"] = dt.datetime.now(dt.UTC).isoformat()
    target.write(json.dumps(index, indent=2).encode() + b"\n", INDEX)
    report.versions_total = len(index["versions"])
    return report


def backup_versions(url: str, storage_options: Mapping[str, Any] | None = None
                    ) -> tuple[list[str], str | None]:
    """(versions in the backup oldest first, the version `latest` pointed to at backup time)."""
    target = BackupTarget(url, storage_options)
    index = target.index()
    if index is None:
        raise StoreError(f"{target.shown}: no backup found ({INDEX} missing)")
    return sorted(index["versions"]), index.get("latest")


def restore_version(store: Store, url: str, *, version: str | None = None,
                    key: str | None = None, storage_options: Mapping[str, Any] | None = None,
                    point_latest: bool = True) -> RestoreReport:
    """Bring `version` (default: the backup's latest) back into `store`, verified."""
    target = BackupTarget(url, storage_options)
    index = target.index()
    if index is None:
        raise StoreError(f"{target.shown}: no backup found ({INDEX} missing)")
    target.unlock(index, key)
    version = version or index.get("latest")
    entry = index["versions"].get(version or "")
    if entry is None:
        recent = ", ".join(sorted(index["versions"])[-3:]) or "none"
        raise StoreError(f"{target.shown}: version {version!r} is not in the backup "
                         f"(latest ones: {recent})")
    assert version is not None
    manifest_bytes = target.read("versions", version, MANIFEST)
    if sha256_bytes(manifest_bytes) != entry["manifest_sha256"]:
        raise StoreError(f"{target.shown}: manifest of {version} is corrupt (sha256 mismatch)")
    files = Manifest.parse(manifest_bytes, f"{target.shown}: {version}").files
    if {n: e.sha256 for n, e in files.items()} != {
            n: m["sha256"] for n, m in entry["files"].items()}:
        raise StoreError(f"{target.shown}: manifest of {version} disagrees with {INDEX}")
    report = RestoreReport(target.shown, version)
    with store.lock():
        store.clean_staging()
        store.archive.mkdir(parents=True, exist_ok=True)
        final = store.archive / version
        if final.is_dir():
            _repair(target, final, files, manifest_bytes, report)
        else:
            _download(store, target, final, files, manifest_bytes, report)
        problems = store.verify(version)
        if problems:
            raise StoreError(f"restored {version} does not verify: {problems[0]}")
        report.files_verified = len(files)
        if point_latest:
            store.point_latest_to(version)
        report.latest = store.current_version()
    return report


def _download(store: Store, target: BackupTarget, final: Path, files: dict[str, FileEntry],
              manifest_bytes: bytes, report: RestoreReport) -> None:
    staging = store.archive / f".staging-restore-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        for name, entry in sorted(files.items()):
            data = target.get_blob(entry.sha256, f"{name} of {final.name}")
            atomic_write_bytes(staging / name, data)
            report.files_downloaded.append(name)
            report.bytes_downloaded += len(data)
        atomic_write_bytes(staging / MANIFEST, manifest_bytes)
        fsync_dir(staging)
        os.rename(staging, final)
        fsync_dir(store.archive)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _repair(target: BackupTarget, final: Path, files: dict[str, FileEntry], manifest_bytes: bytes,
            report: RestoreReport) -> None:
    """Replace the missing or corrupt files of an existing version, each atomically.

    A replacement gets a new inode, so versions hard-linked to the corrupt file are untouched
    (restore them by version if they matter).
    """
    local_manifest = final / MANIFEST
    for name, entry in sorted(files.items()):
        path = final / name
        with contextlib.suppress(FileNotFoundError):
            if sha256_file(path) == entry.sha256:
                continue
        data = target.get_blob(entry.sha256, f"{name} of {final.name}")
        atomic_write_bytes(path, data)
        report.files_downloaded.append(name)
        report.bytes_downloaded += len(data)
    if not local_manifest.exists() or local_manifest.read_bytes() != manifest_bytes:
        atomic_write_bytes(local_manifest, manifest_bytes)
        report.files_downloaded.append(MANIFEST)
        report.bytes_downloaded += len(manifest_bytes)


def parse_storage_options(pairs: list[str] | None) -> dict[str, Any]:
    """`KEY=VALUE` strings -> dict; `true`/`false`/integers are converted.

    ConfigError names the malformed item by position, never echoing its value (it may be a
    secret).
    """
    out: dict[str, Any] = {}
    for i, pair in enumerate(pairs or [], start=1):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--storage-option #{i}: expected KEY=VALUE")
        low = value.lower()
        parsed: Any = value
        if low in ("true", "false"):
            parsed = low == "true"
        elif value.isdigit():
            parsed = int(value)
        out[key.strip()] = parsed
    return out
