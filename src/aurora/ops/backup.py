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
  the backup with an error naming the file, and so does a `latest` that points to no
  published version (dangling): the backup's `latest` is always a version in the backup.
- Nothing read from a backup is trusted as a path: `backup.json` is checked as a whole when
  it is read (`check_index`: version names and file names are plain names, blob names are
  sha256 hex digests, `latest` is one of its versions or absent), a version's manifest is
  parsed with `Manifest.parse` and must name the same version and the same files with the
  same sha256 as `backup.json` before any local path is built. A `backup.json` nested more
  deeply than Aurora writes, and an encryption record with any field other than as Aurora
  writes it (`aurora.ops.crypto.check_key_record`: base64, lengths, bounded scrypt
  parameters), are refused too, before any key is derived. Anything else is refused with
  a one-line StoreError naming the backup, the file and the name at fault.
- `restore_version` downloads into a staging directory (or repairs the files of an existing
  version that are missing or corrupt), verifies every sha256 before anything is placed,
  then points `latest` at the restored version. A local version whose manifest parses but
  differs from the backup's is not replaced: StoreError, nothing changed.
- Encryption (`config.ops.backup_key`, env `AURORA_BACKUP_KEY`) is fixed when the backup is
  created: an encrypted backup needs the same key to add to or restore from, and a plain
  backup cannot silently become partly encrypted.
- URLs are shown without credentials; storage options (e.g. `endpoint_url`, `key`, `secret`
  for s3fs) are passed to fsspec as given and never printed. Any exception from a fsspec
  call (OSError, botocore's...) becomes a one-line StoreError with the shown URL and the
  exception's type name only: its message may quote credentials.
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

from aurora.atomic import (
    atomic_write_bytes,
    fsync_dir,
    private_dir,
    sha256_bytes,
    sha256_file,
)
from aurora.errors import ConfigError, StoreError
from aurora.ops.backuptarget import FORMAT, INDEX, BackupTarget, safe_name
from aurora.ops.crypto import new_key_record
from aurora.store import MANIFEST, FileEntry, Manifest, Store
from aurora.store.copies import make_read_only


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


def backup_store(store: Store, url: str, *, key: str | None = None,
                 storage_options: Mapping[str, Any] | None = None) -> BackupReport:
    """Copy every verified version of `store` not yet in the backup at `url`.

    StoreError, with `backup.json` left as it was, when the store is empty, when `latest`
    points to no published version (dangling) or to a corrupt one: the `latest` recorded in
    the backup is always a version the backup holds.
    """
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
        if current not in store.versions():
            raise StoreError(
                f"{store.latest} points to {current!r}, which is not a published version in "
                f"{store.archive} (dangling); nothing backed up: make a version current with "
                "`aurora rollback --to VERSION` or `aurora restore` first")
        for version in store.versions():
            if version in index["versions"]:
                continue
            problems = store.verify(version) or _names_other_version(store, version)
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
        if current not in index["versions"]:  # unreachable after the checks above
            raise StoreError(f"latest version {current} is not in the backup; nothing recorded")
        index["latest"] = current
    index["updated_at"] = dt.datetime.now(dt.UTC).isoformat()
    target.write(json.dumps(index, indent=2).encode() + b"\n", INDEX)
    report.versions_total = len(index["versions"])
    return report


def _names_other_version(store: Store, version: str) -> list[str]:
    """A problem when the manifest of `version` names another version (a directory renamed
    by hand): restore would refuse such a copy, so it is not backed up."""
    named = store.manifest(version).version
    if named != version:
        return [f"{MANIFEST} of {version} names version {named}"]
    return []


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
    """Bring `version` (default: the backup's latest) back into `store`, verified.

    Every name comes from a checked `backup.json` (`check_index`) and a manifest that agrees
    with it (`_backed_up_manifest`) before any local path is built; StoreError otherwise,
    with the store untouched.
    """
    target = BackupTarget(url, storage_options)
    index = target.index()
    if index is None:
        raise StoreError(f"{target.shown}: no backup found ({INDEX} missing)")
    target.unlock(index, key)
    if version is None:
        version = index.get("latest")
        if version is None:
            raise StoreError(f"{target.shown}: {INDEX} records no latest version; "
                             "choose one with --version")
        if version not in index["versions"]:
            recent = ", ".join(sorted(index["versions"])[-3:]) or "none"
            raise StoreError(f"{target.shown}: {INDEX} records latest version {version}, "
                             f"which is not in the backup; choose one with --version "
                             f"(latest ones: {recent})")
    version = safe_name(version, "version name", target.shown)
    entry = index["versions"].get(version)
    if entry is None:
        recent = ", ".join(sorted(index["versions"])[-3:]) or "none"
        raise StoreError(f"{target.shown}: version {version!r} is not in the backup "
                         f"(latest ones: {recent})")
    manifest_bytes, files = _backed_up_manifest(target, version, entry)
    report = RestoreReport(target.shown, version)
    with store.lock():
        store.clean_staging()
        private_dir(store.archive)
        final = store.archive / version
        if final.is_dir():
            _repair(target, final, files, manifest_bytes, report)
        else:
            _download(store, target, final, files, manifest_bytes, report)
        problems = store.verify(version)
        if problems:
            raise StoreError(f"restored {version} does not verify: {problems[0]}")
        for name in (*files, MANIFEST):  # published files are read-only, restored ones too
            make_read_only(final / name)
        report.files_verified = len(files)
        if point_latest:
            store.point_latest_to(version)
        report.latest = store.current_version()
    return report


def _backed_up_manifest(target: BackupTarget, version: str, entry: dict[str, Any]
                        ) -> tuple[bytes, dict[str, FileEntry]]:
    """The manifest bytes of `version` and its files, once the manifest matches its sha256
    in `backup.json`, parses (`Manifest.parse` checks every name), names `version` itself,
    and lists exactly the files (and sha256) `backup.json` lists. StoreError otherwise."""
    manifest_bytes = target.read("versions", version, MANIFEST)
    if sha256_bytes(manifest_bytes) != entry["manifest_sha256"]:
        raise StoreError(f"{target.shown}: manifest of {version} is corrupt (sha256 mismatch)")
    manifest = Manifest.parse(manifest_bytes, f"{target.shown}: versions/{version}/{MANIFEST}")
    if manifest.version != version:
        raise StoreError(f"{target.shown}: versions/{version}/{MANIFEST} names version "
                         f"{manifest.version}, not {version}")
    if MANIFEST in manifest.files:
        raise StoreError(f"{target.shown}: versions/{version}/{MANIFEST} lists a file named "
                         f"{MANIFEST} (reserved for the manifest)")
    if {n: e.sha256 for n, e in manifest.files.items()} != {
            n: m["sha256"] for n, m in entry["files"].items()}:
        raise StoreError(f"{target.shown}: manifest of {version} disagrees with {INDEX}")
    return manifest_bytes, dict(manifest.files)


def _download(store: Store, target: BackupTarget, final: Path, files: dict[str, FileEntry],
              manifest_bytes: bytes, report: RestoreReport) -> None:
    staging = private_dir(store.archive / f".staging-restore-{uuid.uuid4().hex}")
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

    Only a missing or unparsable local manifest is replaced: a local manifest that parses
    and differs from the backup's describes other files (another build of that version),
    so StoreError is raised before anything is changed.
    A replacement gets a new inode, so versions hard-linked to the corrupt file are untouched
    (restore them by version if they matter).
    """
    local_manifest = final / MANIFEST
    local_bytes = _read_if_present(local_manifest)
    if local_bytes is not None and local_bytes != manifest_bytes and _parses(local_bytes):
        raise StoreError(f"version {final.name} exists locally with another manifest; "
                         "restore into another data directory or remove that version")
    for name, entry in sorted(files.items()):
        path = final / name
        with contextlib.suppress(FileNotFoundError):
            if sha256_file(path) == entry.sha256:
                continue
        data = target.get_blob(entry.sha256, f"{name} of {final.name}")
        atomic_write_bytes(path, data)
        report.files_downloaded.append(name)
        report.bytes_downloaded += len(data)
    if local_bytes != manifest_bytes:
        atomic_write_bytes(local_manifest, manifest_bytes)
        report.files_downloaded.append(MANIFEST)
        report.bytes_downloaded += len(manifest_bytes)


def _read_if_present(path: Path) -> bytes | None:
    """The bytes of `path`, None when it does not exist; StoreError naming it if unreadable."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"{path}: cannot read ({type(exc).__name__})") from None


def _parses(manifest_bytes: bytes) -> bool:
    """True when `manifest_bytes` is a manifest `Manifest.parse` accepts (a corrupt one is
    not: restore replaces it)."""
    try:
        Manifest.parse(manifest_bytes, MANIFEST)
    except StoreError:
        return False
    return True


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
