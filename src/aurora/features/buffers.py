"""The engine's large arrays, each on its own anonymous private mapping.

numpy asks the kernel for transparent huge pages for every array of 4 MB or more, and the
kernel's zeroing of a whole 2 MB page at the first write costs two to three times the 4 KB
path on the virtual machines measured (`docs/build-engine.md`). The engine's large arrays (aligned
fields, nodes kept across phases, output columns) are written once and read block by block,
so they gain nothing from huge pages: `blank` maps them with `mmap`, which leaves the
kernel's default in place. Nothing process-wide changes; the memory is unmapped with the
array's last view.
"""

from __future__ import annotations

import math
import mmap

import numpy as np

LARGE = 1 << 22  # bytes: numpy's own threshold for asking for huge pages
_PRIVATE = getattr(mmap, "MAP_PRIVATE", None)  # POSIX only
_ANONYMOUS = getattr(mmap, "MAP_ANONYMOUS", None)


def blank(shape: tuple[int, ...]) -> np.ndarray:
    """A writable float64 array of `shape`, C order, with no defined contents: the caller
    writes every cell it reads. Arrays under LARGE bytes (and every array where `mmap` has
    no private anonymous mappings) come from `np.empty`."""
    size = math.prod(shape) * 8
    if size < LARGE or _PRIVATE is None or _ANONYMOUS is None:
        return np.empty(shape)
    region = mmap.mmap(-1, size, flags=_PRIVATE | _ANONYMOUS)
    return np.frombuffer(region, dtype=np.float64).reshape(shape)
