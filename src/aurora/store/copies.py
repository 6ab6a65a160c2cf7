"""How a new version holds the files it inherits: its own copy, never a link to its parent's.

Versions used to hard-link unchanged files, so one in-place write (a truncation, a tool
rewriting `latest/prices.parquet`) damaged every version sharing the inode and left
`aurora rollback` nothing to go back to. Now:

- `independent_copy` gives the new version its own copy: a reflink (copy-on-write clone,
  `FICLONE`) where the filesystem supports it (btrfs, XFS, ...), which costs no data blocks,
  else a full copy (`shutil.copyfile`, which uses `copy_file_range`/`sendfile`).
- `share_with_older` then lets the parent re-use the grandparent's inode for a file both
  hold unchanged (a hard link, replaced atomically), so older versions share one inode per
  content and the disk cost stays at one extra copy: the latest version's own.
- Published files are read-only (no write bit; 0400 for files written 0600): tools that
  respect permissions cannot write them.

So after an in-place write to any version's file, the newest version and its parent never
share that inode: one of them still verifies, and rollback (or the next publication, which
checks inherited files against the manifest) has an intact copy.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import uuid
from pathlib import Path

from aurora.oserrors import storage_error

FICLONE = 0x40049409  # Linux ioctl: clone the source file's extents into the target
WRITE_BITS = 0o222


def independent_copy(source: Path, target: Path) -> str:
    """Copy `source` to `target` (a new file, created 0600 whatever the umask); "reflink" or
    "copy", whichever was done. A full, read-only or denied target is a one-line
    StorageError naming it."""
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with open(source, "rb") as src, os.fdopen(fd, "wb") as dst:
            try:
                fcntl.ioctl(dst.fileno(), FICLONE, src.fileno())
                return "reflink"
            except OSError:
                pass  # no copy-on-write here (ext4, tmpfs, overlay...): copy the bytes
        shutil.copyfile(source, target)
    except OSError as exc:
        raise storage_error(exc, target) or exc from None
    return "copy"


def make_read_only(path: Path) -> None:
    """Clear every write bit of a published file (0600 becomes 0400)."""
    os.chmod(path, path.stat().st_mode & 0o7777 & ~WRITE_BITS)


def same_inode(a: Path, b: Path) -> bool:
    """True when `a` and `b` are one file (False when either is missing)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def share_with_older(newer: Path, older: Path) -> bool:
    """Make `newer` a hard link to `older`'s inode (same content: the caller has checked
    `older` against its manifest); True when done. Skipped when they are already one inode,
    when sizes differ, or when `older` was modified after `newer` was written. The
    replacement is atomic (link, then rename)."""
    try:
        new_stat, old_stat = newer.stat(), older.stat()
    except OSError:
        return False
    if (os.path.samestat(new_stat, old_stat) or new_stat.st_size != old_stat.st_size
            or old_stat.st_mtime_ns > new_stat.st_mtime_ns):
        return False
    tmp = newer.with_name(f".{newer.name}.{uuid.uuid4().hex}.link")
    try:
        os.link(older, tmp)
        os.replace(tmp, newer)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        return False
    return True
