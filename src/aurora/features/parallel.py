"""Run the independent blocks of a build stage on worker threads.

The kernels spend most of their time in code that releases the GIL (numpy, bottleneck), so
threads share the cores without copying anything: each block writes its cells straight into
output arrays all threads see. Blocks are claimed in order, so a busy core slows only its
own share; each is computed by the same function on the same inputs whichever thread runs
it, so the result is bit-for-bit the single-threaded one.

Contract for `fn`: it reads memory prepared before the call and writes only the cells of its
own block; it may allocate temporaries but must not mutate shared Python state.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

MAX_DEFAULT_WORKERS = 4


def default_workers() -> int:
    """The CPUs this process may run on, at most MAX_DEFAULT_WORKERS."""
    affinity = getattr(os, "sched_getaffinity", None)
    cpus = len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)
    return max(1, min(MAX_DEFAULT_WORKERS, cpus))


def map_blocks(fn: Callable[[T], R], items: Sequence[T], workers: int,
               progress: Callable[[int], None] = lambda done: None) -> list[R]:
    """[fn(item) for item in items], computed on up to `workers` threads, in order.

    progress(done) is called in the caller's thread as items complete, in item order. If a
    call raises, then once the caller reaches it in item order the items not yet started
    are cancelled, the running ones finish, and its exception is re-raised here (the
    outputs are then incomplete). One worker or one item: the calls run in this thread."""
    results: list[R] = []
    if min(workers, len(items)) <= 1:
        for item in items:
            results.append(fn(item))
            progress(len(results))
        return results
    with ThreadPoolExecutor(min(workers, len(items)), thread_name_prefix="aurora-build") as pool:
        for result in pool.map(fn, items):
            results.append(result)
            progress(len(results))
    return results
