"""The data directory: one check that it can hold a store before anything is written.

`ensure_data_dir(root)` creates `root` (owner-only, `aurora.atomic.private_dir`) when it
is missing and proves that files can be created in it. A path that is a file (or runs
through one), a directory that cannot be created (under /proc, say) or one that is not
writable (permissions, a read-only or full file system) is a one-line StoreError naming
the directory. `Store.lock` (every write to the store) and a command's run context call it.
"""

from __future__ import annotations

import errno
import tempfile
from pathlib import Path

from aurora.atomic import private_dir
from aurora.errors import StoreError
from aurora.oserrors import STORAGE_REASONS

_NOT_A_DIRECTORY = (errno.EEXIST, errno.ENOTDIR)


def ensure_data_dir(root: Path) -> Path:
    """`root`, created if missing, once files can be created in it; StoreError otherwise."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise StoreError(f"data directory {root} is a file, not a directory")
    try:
        private_dir(root)
    except OSError as exc:
        raise StoreError(f"data directory {root} cannot be created: {_reason(exc)}") from None
    try:
        with tempfile.TemporaryFile(dir=root):
            pass
    except OSError as exc:
        raise StoreError(f"data directory {root} is not writable: {_reason(exc)}") from None
    return root


def _reason(exc: OSError) -> str:
    if exc.errno in _NOT_A_DIRECTORY:
        where = f" ({exc.filename})" if exc.filename is not None else ""
        return f"a file is in the way{where}"
    return STORAGE_REASONS.get(exc.errno or -1) or (exc.strerror or str(exc)).lower()
