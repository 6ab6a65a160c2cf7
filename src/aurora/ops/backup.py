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
import re
import shutil
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import fsspec

from aurora.atomic import (
    atomic_write_bytes,
    fsync_dir,
    private_dir,
    sha256_bytes,
    sha256_file,
)
from aurora.errors import ConfigError, CredentialsError, StoreError
from aurora.ops.crypto import Cipher, check_key_record, new_key_record, open_key_record
from aurora.oserrors import storage_error
from aurora.redaction import redact, redact_url
from aurora.store import MANIFEST, FileEntry, Manifest, Store
from aurora.store.copies import make_read_only
from aurora.store.files import plain_name, store_name

FORMAT = "aurora-backup/1"
INDEX = "backup.json"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# Aurora's backup.json nests 5 levels deep (index, versions, version, files, file); anything
# much deeper is crafted, and would make parsing or printing it recurse without bound
_MAX_INDEX_DEPTH = 32


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


def _safe(name: object, what: str, shown: str,
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
        _safe(version, f"version name in {INDEX}", shown)
        files = entry.get("files") if isinstance(entry, dict) else None
        if not isinstance(files, dict):
            raise StoreError(f"{shown}: {INDEX}: version {version} has no `files` object")
        _blob_name(entry.get("manifest_sha256"), f"{shown}: {INDEX}: manifest of {version}")
        for name, meta in files.items():
            if _safe(name, f"file name in {INDEX} (version {version})", shown,
                     store_name) == MANIFEST:
                raise StoreError(f"{shown}: {INDEX}: version {version} lists a file named "
                                 f"{MANIFEST} (reserved for the manifest)")
            sha = meta.get("sha256") if isinstance(meta, dict) else None
            _blob_name(sha, f"{shown}: {INDEX}: {name} of {version}")
    latest = index.get("latest")
    if latest is not None:
        _safe(latest, f"latest version in {INDEX}", shown)
    if index.get("encrypted"):
        _check_key_record(index.get("encryption"), shown)
    return index


def _check_key_record(record: object, shown: str) -> None:
    """The encryption record of an encrypted backup has exactly the fields Aurora writes,
    decodable and in bounds (`aurora.ops.crypto.check_key_record`); StoreError naming the
    backup and the field otherwise."""
    check_key_record(record, f"{shown}: {INDEX}: the encryption record")


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
    version = _safe(version, "version name", target.shown)
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
