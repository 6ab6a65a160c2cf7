"""The versioned store: `data/archive/<version>/` snapshots and the `data/latest` pointer.

Layout under the data directory::

    latest -> archive/20261124T101500123456Z-fetch     (a symlink, swapped atomically)
    archive/<version>/prices/year=2024/part-0.parquet, prices.index.json, ..., manifest.json
    archive/.staging-<id>/                             (a transaction in progress)
    state/                                             (checkpoints, limiter state)

Contract:
- A version is immutable once published. It holds every file of the store at that moment:
  a transaction writes the files it changes into a staging directory, and the unchanged
  files of the parent version are copied in (reflinked where the filesystem can), each
  checked against the parent's manifest. Published files are read-only; older versions
  share one inode per unchanged file (`aurora.store.copies`).
- `manifest.json` lists each file with its sha256 and size, the stage that produced the
  version, its parent, and stage-specific metadata (row counts, date range, parameters).
- Publication is a rename of the staging directory into `archive/` followed by an atomic
  replacement of the `latest` symlink. A failed or killed transaction never touches
  `latest`: readers see the previous complete version or the new one, nothing between.
- One writer at a time: a transaction holds an exclusive `flock` on `data/.lock`.
- A stage publishes only over the version it read: `transaction(base=...)` raises
  StoreError, publishing nothing, when `latest` moved in between.
- Each version records the universe it was made for (`Manifest.universe`): the one the
  transaction was given, else its parent's.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aurora.atomic import atomic_write_json, fsync_dir, private_dir, sha256_file
from aurora.errors import StoreError
from aurora.store.copies import (
    independent_copy,
    make_read_only,
    same_inode,
    share_with_older,
)
from aurora.store.datadir import ensure_data_dir
from aurora.store.files import MANIFEST, NOT_INHERITED, store_name
from aurora.store.manifest import FileEntry, Manifest, UniverseRecord

_STAGING_PREFIX = ".staging-"
_PLAIN_VERSION = re.compile(r"[0-9]{8}T[0-9]{12}Z-[a-z_]+")
CORRUPT_HINT = ("run `aurora validate`, then `aurora rollback` (or `aurora restore`) to a "
                "version that verifies")


def new_version_id(stage: str, now: dt.datetime | None = None) -> str:
    """A sortable, unique version name: UTC timestamp to the microsecond plus the stage."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{stage}"


@dataclass
class Transaction:
    """Files being written for one new version. Use via `Store.transaction()`."""

    store: Store
    stage: str
    staging: Path
    parent: str | None
    params: dict[str, Any]
    universe: UniverseRecord | None = None
    file_meta: dict[str, dict[str, Any]] = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)
    adopted: dict[str, str] = field(default_factory=dict)

    def path(self, name: str) -> Path:
        """Where to write file `name` of the new version (`store_name`: a plain name or a
        dataset part); its directories are created owner-only."""
        if store_name(name, "store file name") == MANIFEST:
            raise StoreError(f"invalid store file name {name!r}: reserved for the manifest")
        self.removed.discard(name)
        path = self.staging / name
        if path.parent != self.staging:
            private_dir(path.parent)
        return path

    def describe(self, name: str, **meta: Any) -> None:
        """Attach metadata (rows, date range, ...) to file `name` in the manifest."""
        self.file_meta.setdefault(name, {}).update(meta)

    def adopt(self, name: str, version: str) -> None:
        """Carry file `name` of another published `version` into the new version unchanged
        (checked against that version's manifest when publishing), as a parent's file is
        inherited: a build keeps the parts of an earlier build's features."""
        store_name(name, "store file name")
        self.removed.discard(name)
        self.adopted[name] = version

    def remove(self, name: str) -> None:
        """Leave file `name` of the parent version out of the new version; a dataset's name
        (`features`) leaves out all its parts, those written earlier in this transaction
        included (parts adopted after this call are kept)."""
        store_name(name, "store file name")
        self.adopted.pop(name, None)
        self.removed.add(name)
        staged = self.staging / name
        if staged.is_dir():
            shutil.rmtree(staged)
        else:
            with contextlib.suppress(FileNotFoundError):
                staged.unlink()


class Store:
    """The data directory: versioned outputs plus inputs and run state."""

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir).expanduser().absolute()

    # -- paths ---------------------------------------------------------------------------
    @property
    def latest(self) -> Path:
        return self.root / "latest"

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    def file_path(self, name: str, version: str | None = None) -> Path | None:
        """Path of file `name` in `version` (default: latest), or None when absent."""
        version = version or self.current_version()
        if version is None:
            return None
        path = self.archive / version / name
        return path if path.exists() else None

    def verified_path(self, name: str, version: str | None = None, *,
                      hint: str | None = None) -> Path | None:
        """Path of file `name` in `version` (default: latest) once its bytes match the sha256
        the manifest records; None when the version does not hold it (StoreError with
        `hint`, what to run, when given). A file that does not match raises StoreError
        naming the file and version: a stage never reads a changed or corrupt input."""
        version = version or self.current_version()
        entry = self.manifest(version).file(name) if version is not None else None
        path = self.archive / version / name if version is not None else None
        if entry is None or path is None or not path.exists():
            if entry is None and hint is None:
                return None
            where = self.archive / version / name if version else self.latest / name
            what = "is listed in its manifest but missing" if entry else "does not exist"
            raise StoreError(f"{where} {what}: {hint or CORRUPT_HINT}")
        if sha256_file(path) != entry.sha256:
            raise StoreError(f"{name} of version {version} does not match its manifest "
                             f"(changed or corrupt): {CORRUPT_HINT}")
        return path

    # -- versions ------------------------------------------------------------------------
    def current_version(self) -> str | None:
        """The version `latest` points to, or None for an empty store."""
        if not self.latest.is_symlink():
            if self.latest.exists():
                raise StoreError(
                    f"{self.latest} is not a version pointer (expected a symlink into archive/)"
                )
            return None
        return Path(os.readlink(self.latest)).name

    def versions(self) -> list[str]:
        """Published versions, oldest first."""
        if not self.archive.is_dir():
            return []
        return sorted(
            p.name
            for p in self.archive.iterdir()
            if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST).exists()
        )

    def manifest(self, version: str | None = None) -> Manifest:
        """The manifest of `version` (default: latest). Raises StoreError when missing."""
        version = version or self.current_version()
        if version is None:
            raise StoreError(f"{self.root}: the store is empty (run `aurora fetch` first)")
        return Manifest.read(self.archive / version / MANIFEST)

    def lineage(self, version: str | None = None) -> Iterator[Manifest]:
        """Manifests from `version` (default: latest) back through its parents.

        Ends at the first version without a parent or whose parent is no longer in the
        archive (pruned); an empty store yields nothing. A parent chain that loops (a
        hand-edited manifest) raises StoreError.
        """
        version = version or self.current_version()
        seen: set[str] = set()
        while version is not None:
            if version in seen:
                raise StoreError(f"{self.archive}: the parent chain of the manifests loops at "
                                 f"{version}")
            seen.add(version)
            manifest = self.manifest(version)
            yield manifest
            version = manifest.parent
            if version is not None and not (self.archive / version / MANIFEST).exists():
                return

    def origin(self, name: str, version: str | None = None) -> Manifest | None:
        """The manifest of the version that wrote the copy of `name` that `version` holds.

        Later stages inherit a file unchanged: walk back while the file's sha256 stays the
        same. None when `version` does not hold `name`; the oldest version still in the
        archive when the writer was pruned.
        """
        found: Manifest | None = None
        sha: str | None = None
        for manifest in self.lineage(version):
            entry = manifest.file(name)
            if entry is None or (sha is not None and entry.sha256 != sha):
                break
            sha, found = entry.sha256, manifest
            if entry.written_by == manifest.stage:
                break
        return found

    def universe(self, version: str | None = None) -> UniverseRecord | None:
        """The universe recorded for `version` (default: latest), or None."""
        for manifest in self.lineage(version):
            if manifest.universe is not None:
                return manifest.universe
        return None

    def verify(self, version: str | None = None) -> list[str]:
        """Check every file of a version against its manifest; return the problems found."""
        version = version or self.current_version()
        if version is None:
            return []
        try:
            manifest = self.manifest(version)
        except StoreError as exc:
            return [str(exc)]
        problems = []
        base = self.archive / version
        for name, entry in manifest.files.items():
            path = base / name
            if not path.exists():
                problems.append(f"{name}: listed in the manifest of {version} but missing")
            elif sha256_file(path) != entry.sha256:
                problems.append(f"{name}: checksum mismatch in {version} (file changed or corrupt)")
        return problems

    def detach(self, version: str) -> int:
        """Give `version` its own copy of every file it shares an inode with (older versions
        share one per content, see `aurora.store.copies`), so that an in-place write through
        `latest` cannot damage another version; returns how many files were copied. Call
        while holding the lock, on a version that verifies."""
        copied = 0
        directories = {self.archive / version}
        for name in self.manifest(version).files:
            path = self.archive / version / name
            if path.stat().st_nlink < 2:
                continue
            fresh = path.with_name(f".{path.name}.{uuid.uuid4().hex}.detach")
            independent_copy(path, fresh)
            make_read_only(fresh)
            os.replace(fresh, path)
            directories.add(path.parent)
            copied += 1
        for directory in directories:
            fsync_dir(directory)
        return copied

    def point_latest_to(self, version: str) -> None:
        """Atomically make `latest` point at an existing version."""
        target = self.archive / version
        if not (target / MANIFEST).exists():
            raise StoreError(f"version {version} does not exist in {self.archive}")
        tmp = self.root / f".latest-{uuid.uuid4().hex}"
        os.symlink(Path("archive") / version, tmp)
        os.replace(tmp, self.latest)
        fsync_dir(self.root)

    # -- writing -------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the store's exclusive writer lock; fail at once if another process has it.
        StoreError naming the data directory when it is not a directory files can be
        created in (`aurora.store.datadir`)."""
        ensure_data_dir(self.root)  # owner-only whatever the umask
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreError(
                    f"{self.root} is locked by another aurora process; try again when it ends"
                ) from None
            yield
        finally:
            os.close(fd)

    def clean_staging(self) -> list[str]:
        """Remove staging directories left by killed runs. Call only while holding the lock."""
        removed = []
        if self.archive.is_dir():
            for p in self.archive.iterdir():
                if p.name.startswith(_STAGING_PREFIX):
                    shutil.rmtree(p, ignore_errors=True)
                    removed.append(p.name)
        return removed

    @contextlib.contextmanager
    def transaction(
        self, stage: str, *, base: str | None, params: dict[str, Any] | None = None,
        universe: UniverseRecord | None = None,
    ) -> Iterator[Transaction]:
        """Write a new version over `base`; publish it on success, discard it on any exception.

        `base` is the version the stage read its inputs from (None: it read an empty store).
        StoreError, before anything is written, when `latest` is no longer `base`: another
        run published meanwhile, and publishing now would silently revert its work.
        `universe`: the symbols this version is made for (default: the parent's record).
        """
        with self.lock():
            self.clean_staging()
            parent = self.current_version()
            if parent != base:
                raise StoreError(
                    f"{self.root}: another run published version {parent} while this {stage} "
                    f"worked from {base or 'an empty store'}; nothing was published, run again")
            private_dir(self.archive)
            staging = self.archive / f"{_STAGING_PREFIX}{uuid.uuid4().hex}"
            private_dir(staging)  # becomes the version directory: owner-only
            txn = Transaction(self, stage, staging, parent, dict(params or {}), universe)
            txn.removed.update(NOT_INHERITED)  # a stage that writes one writes it anew
            try:
                yield txn
                self._publish(txn)
            finally:
                shutil.rmtree(staging, ignore_errors=True)

    def _publish(self, txn: Transaction) -> str:
        parent = self.manifest(txn.parent) if txn.parent is not None else None
        parent_files = dict(parent.files) if parent is not None else {}
        sources = {name: str(txn.parent) for name in parent_files}
        for name, version in txn.adopted.items():
            entry = self.manifest(version).file(name)
            if entry is None:
                raise StoreError(f"{name} is not in version {version}: nothing to adopt")
            parent_files[name], sources[name] = entry, version
        inherited: set[str] = set()
        for name, version in sources.items():
            target = txn.staging / name
            if (name in txn.removed or target.exists()
                    or (name not in txn.adopted and _removed_dataset(name, txn.removed))):
                continue
            if target.parent != txn.staging:
                private_dir(target.parent)
            independent_copy(self.archive / version / name, target)
            inherited.add(name)
        files: dict[str, FileEntry] = {}
        for name, path in _staged_files(txn.staging):
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
            digest = sha256_file(path)
            if name in inherited and digest != parent_files[name].sha256:
                # never re-certify a changed or corrupt file by hashing it into a new manifest
                raise StoreError(f"{name} of version {sources[name]} does not match its "
                                 f"manifest (changed or corrupt); nothing was published: "
                                 f"{CORRUPT_HINT}")
            keep_meta = name not in txn.file_meta and name in parent_files
            meta = parent_files[name].model_dump() if keep_meta else {}
            meta.update(txn.file_meta.get(name, {}))
            meta.update(sha256=digest, bytes=path.stat().st_size)
            if not keep_meta:
                meta["written_by"] = txn.stage
            meta.pop("adopted_from", None)
            if name in txn.adopted and name in inherited:
                meta["adopted_from"] = txn.adopted[name]
            files[name] = FileEntry.model_validate(meta)
            make_read_only(path)
        for directory in sorted({d for _, p in _staged_files(txn.staging)
                                 for d in p.relative_to(txn.staging).parents} - {Path(".")},
                                key=lambda d: -len(d.parts)):
            fsync_dir(txn.staging / directory)
        version = new_version_id(txn.stage)
        universe = txn.universe or (self.universe(txn.parent) if txn.parent else None)
        manifest = Manifest(version=version, created_at=dt.datetime.now(dt.UTC),
                            stage=txn.stage, parent=txn.parent, params=txn.params,
                            files=files, universe=universe)
        atomic_write_json(txn.staging / MANIFEST, manifest.to_json())
        make_read_only(txn.staging / MANIFEST)
        fsync_dir(txn.staging)
        os.rename(txn.staging, self.archive / version)
        fsync_dir(self.archive)
        self.point_latest_to(version)
        if parent is not None:
            self._share_unchanged(parent)
        return version

    def _share_unchanged(self, parent: Manifest) -> None:
        """Disk reclamation after a publication (see `aurora.store.copies`): every file of
        the parent that its own parent holds unchanged (or that it adopted from an older
        version: `adopted_from`) becomes a hard link to that version's inode, once that
        copy still hashes to its manifest's sha256. Best effort: a failure only costs disk.
        """
        if parent.parent is None or not (self.archive / parent.parent / MANIFEST).exists():
            return  # an adopted file's source is older than the parent's parent: kept too
        grandparent = self.manifest(parent.parent)
        for name, entry in sorted(parent.files.items()):
            source = grandparent
            adopted = entry.meta("adopted_from")
            if (isinstance(adopted, str) and _PLAIN_VERSION.fullmatch(adopted)
                    and (self.archive / adopted / MANIFEST).exists()):
                source = self.manifest(adopted)  # an earlier build's feature parts
            older = source.file(name)
            if older is None or older.sha256 != entry.sha256:
                continue
            newer_path = self.archive / parent.version / name
            older_path = self.archive / source.version / name
            if not same_inode(newer_path, older_path) and \
                    sha256_file(older_path) == older.sha256:
                share_with_older(newer_path, older_path)


def _staged_files(staging: Path) -> list[tuple[str, Path]]:
    """(store name, path) of every file in a staging directory, sorted by name: the files
    directly inside it and the parts of datasets below it; the manifest, hidden files and
    temporary files left out."""
    found = []
    for path in staging.rglob("*"):
        relative = path.relative_to(staging)
        if (path.is_dir() or relative.as_posix() == MANIFEST
                or any(part.startswith(".") for part in relative.parts)):
            continue
        found.append((relative.as_posix(), path))
    return sorted(found)


def _removed_dataset(name: str, removed: set[str]) -> bool:
    """Whether `name` is a part of a dataset the transaction removed as a whole."""
    return "/" in name and name.split("/", 1)[0] in removed
