"""Point `latest` at another version of the local store: undo a bad publication.

Every publication keeps the versions before it in `archive/` (until retention prunes them),
so going back is only a matter of moving the `latest` pointer, atomically, once the target
version has been verified file by file against its manifest and given its own copy of the
files it shared with older versions (so a write through `latest` damages no other
version). Nothing is deleted: the version left behind stays in the archive and can be made
current again the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from aurora.errors import StoreError
from aurora.store import Store


@dataclass(frozen=True)
class RollbackReport:
    previous: str | None
    current: str
    files_verified: int

    def summary_lines(self) -> list[str]:
        return [f"latest: {self.previous or 'none'} -> {self.current}",
                f"verified {self.files_verified} file(s) against the manifest of {self.current}"]


def rollback(store: Store, version: str | None = None) -> RollbackReport:
    """Make `version` the latest one (default: the parent of the current latest).

    Holds the store's writer lock, so no publication can interleave. Raises StoreError,
    leaving `latest` untouched, when the store is empty, the current version has no parent,
    `version` is not in the archive (never published, or pruned), or any of its files is
    missing or fails its checksum (the message names the file).
    """
    with store.lock():
        current = store.current_version()
        if version is None:
            if current is None:
                raise StoreError(f"{store.root}: the store is empty, nothing to roll back")
            parent = store.manifest(current).parent
            if not parent:
                raise StoreError(f"version {current} is the first one: it has no parent to"
                                 " roll back to")
            version = parent
        if version not in store.versions():
            raise StoreError(f"version {version} is not in {store.archive} (never published,"
                             " or removed by retention); `aurora status` lists the latest")
        problems = store.verify(version)
        if problems:
            more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
            raise StoreError(f"version {version} fails verification, latest left at"
                             f" {current}: {problems[0]}{more}")
        files = len(store.manifest(version).files)
        store.detach(version)  # latest never shares an inode with another version
        store.point_latest_to(version)
    return RollbackReport(current, version, files)
