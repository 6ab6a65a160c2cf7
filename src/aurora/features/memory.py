"""Memory handling of the build: where its several GB of arrays come from.

On the virtual machines we measured, mapping a fresh page costs far more than the arithmetic
done on it (about 0.6 s per GB first touched, against 0.08 s per GB rewritten), so the build
avoids fresh pages where it can and maps the rest ahead of time:

- `retain_freed_memory`: the per-block temporaries (a few MB each, thousands of them) are
  served from memory the process already has instead of fresh mappings (series stage 4.6 s
  -> 2.8 s of CPU at 3,000 symbols x 10 years);
- `small_pages`: no transparent huge pages for fresh arrays (a fresh huge page can wait on
  compaction or on the hypervisor);
- `Prefault`: the large arrays (outputs and cross-stage inputs) are allocated before the
  serial alignment stage, and the kernel maps their pages on a background thread meanwhile.

Every helper here is a performance measure only: results do not depend on any of them, and
each falls back to doing nothing where the platform lacks the mechanism.
"""

from __future__ import annotations

import ctypes
import mmap
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np


@contextmanager
def small_pages() -> Iterator[None]:
    """Do not ask for transparent huge pages while the build runs (restored afterwards).

    numpy madvises large arrays for huge pages. A fresh huge page can wait for direct memory
    compaction, or on a virtual machine for the hypervisor to back 2 MB at once: we measured
    up to 4 s per GB on first touch, against 0.55 s per GB with small pages. The build
    touches GBs of fresh memory once, so it opts out. Process-wide numpy setting: other threads
    allocating meanwhile get normal pages, which is only a performance difference.
    """
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray  # type: ignore[no-redef]
    setter = getattr(multiarray, "_set_madvise_hugepage", None)
    previous = setter(False) if setter is not None else None
    try:
        yield
    finally:
        if setter is not None and previous is not None:
            setter(previous)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8  # glibc mallopt parameters
_GLIBC_DEFAULT_THRESHOLD = 128 * 1024
_RETAINED_ALLOCATION_MAX = 32 << 20  # glibc's ceiling for the mmap threshold on 64-bit


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


@contextmanager
def retain_freed_memory() -> Iterator[None]:
    """Keep freed blocks of up to 32 MB in the process while the build runs (glibc only).

    By default glibc returns a freed block of more than ~128 KB to the kernel at once, so
    each new temporary of the same size is fresh memory again, page faults included. Inside
    this context such blocks stay in the heap and are reused, and threads started meanwhile
    (the build's workers) share the main heap instead of each growing and trimming an arena
    of its own; afterwards the settings are set back to glibc's defaults and the pool is
    released (`malloc_trim`). Process-wide, like
    every allocator setting: other threads allocating meanwhile are only affected in speed
    (and glibc fixes its arena limit once it has computed it, so threads started later in
    the process may keep sharing arenas: again only a speed difference).
    """
    libc = _libc()
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        yield
        return
    mallopt(_M_MMAP_THRESHOLD, _RETAINED_ALLOCATION_MAX)
    mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    mallopt(_M_ARENA_MAX, 1)
    try:
        yield
    finally:
        mallopt(_M_ARENA_MAX, 0)  # 0: glibc's default, 8 arenas per core
        mallopt(_M_TRIM_THRESHOLD, _GLIBC_DEFAULT_THRESHOLD)
        mallopt(_M_MMAP_THRESHOLD, _GLIBC_DEFAULT_THRESHOLD)
        trim = getattr(libc, "malloc_trim", None)
        if trim is not None:
            trim(0)


_MADV_POPULATE_WRITE = 23  # Linux >= 5.14: map pages writable without changing their contents
_POPULATE_SLICE = 1 << 20


def _libc_madvise() -> Callable[..., int] | None:
    return getattr(_libc(), "madvise", None)  # a ctypes call releases the GIL


def populate(array: np.ndarray) -> bool:
    """Ask the kernel to map every page of `array` now (MADV_POPULATE_WRITE): the contents
    are unchanged, so other threads may read and write the array meanwhile. Returns False
    where that is not supported (then pages are mapped on first touch, as usual)."""
    madvise = _libc_madvise()
    if madvise is None or array.nbytes == 0:
        return False
    address = array.ctypes.data
    start = address - address % mmap.PAGESIZE
    stop = address + array.nbytes
    # in slices, so the process's memory-map lock is never held for long (a long populate
    # stalls every mmap/munmap of the other threads)
    for lo in range(start, stop, _POPULATE_SLICE):
        length = min(_POPULATE_SLICE, stop - lo)
        if madvise(ctypes.c_void_p(lo), ctypes.c_size_t(length),
                   ctypes.c_int(_MADV_POPULATE_WRITE)) != 0:
            return False
    return True


class Prefault:
    """Zeroed arrays whose pages the kernel maps on a background thread.

    `Prefault(shapes)` allocates every array at once (anonymous mappings: nothing is mapped
    yet) and starts a thread that populates them in the order given (put the arrays written
    first first). `get(name)` hands an array out at once: populating never changes contents,
    so the caller may write while the thread is still working (a page it touches first is
    simply mapped by its own fault). Each array has its own mapping, so dropping one frees
    its memory. Without MADV_POPULATE_WRITE (not Linux, or Linux < 5.14) the thread stops at
    the first refusal and pages are mapped on first touch.
    """

    def __init__(self, shapes: Sequence[tuple[str, tuple[int, ...], type]]) -> None:
        self._shapes = {name: shape for name, shape, _ in shapes}
        self._arrays = {name: _zeros(shape, np.dtype(dtype)) for name, shape, dtype in shapes}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(list(self._arrays.values()),),
                                        name="aurora-prefault", daemon=True)
        self._thread.start()

    def _run(self, arrays: list[np.ndarray]) -> None:
        for array in arrays:
            if self._stop.is_set() or not populate(array):
                return

    def get(self, name: str) -> np.ndarray:
        return self._arrays.pop(name)

    def take(self, name: str, shape: tuple[int, ...], dtype: type = np.float64) -> np.ndarray:
        """The planned array `name` if it has this shape and dtype (and was not handed out
        yet), else a new uninitialised one: the caller never depends on the plan being right."""
        array = self._arrays.get(name)
        if array is None or array.shape != tuple(shape) or array.dtype != np.dtype(dtype):
            return np.empty(shape, dtype=dtype)
        return self._arrays.pop(name)

    def close(self) -> None:
        """Stop populating and drop every array not yet handed out (after a failed build)."""
        self._stop.set()
        self._thread.join()
        self._arrays.clear()

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return dict(self._shapes)


def _zeros(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Zeros in a private anonymous mapping of their own (numpy zeros where mmap has no
    MAP_PRIVATE, i.e. Windows)."""
    count = int(np.prod(shape))
    if not hasattr(mmap, "MAP_PRIVATE"):
        return np.zeros(shape, dtype=dtype)
    buffer = mmap.mmap(-1, max(count * dtype.itemsize, 1), flags=mmap.MAP_PRIVATE)
    return np.frombuffer(buffer, dtype=dtype, count=count).reshape(shape)
