"""Where a stage's independent tasks run: in this process, or on a Dask cluster.

`connect(scheduler)` yields a `Runner`. Without a scheduler it is a `LocalRunner` (the tasks
run one after another in this process). With one (`tcp://HOST:PORT`: `--scheduler`,
`AURORA_SCHEDULER` or `compute.scheduler`) it is a `DaskRunner`, a `distributed.Client` of
that scheduler; distributed is imported only then.

Contract of `Runner.map(fn, items, shared=None, progress=None)`:
- returns `[fn(item, shared) for item in items]`, in item order, whatever order the tasks
  finish in; `fn` is a module-level function and items and `shared` pickle (`shared` is sent
  to each worker once, not once per task);
- `progress(done, total)` is called in the caller's thread as tasks finish;
- a task that raises makes `map` raise that exception (the other tasks are cancelled);
- on a cluster, a task whose worker dies is run again on another worker by the scheduler
  (up to its `allowed-failures`, 3 by default); past that, ClusterError names the task
  (its place among the items); a task cancelled by the scheduler, or a lost connection to
  it, is a ClusterError too; `shared` is the task function's second positional argument;
- `ship_code(modules)` first, for modules the workers cannot import (a user's feature
  file): their functions are then sent by value (cloudpickle's `register_pickle_by_value`)
  instead of by name.
The result never depends on where a task ran: the functions are the same code on the same
inputs (the workers must run the same Aurora and libraries, which `describe` does not
check).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import ModuleType
from typing import Any, Protocol, TypeVar

from aurora.errors import AuroraError, first_line

T = TypeVar("T")
R = TypeVar("R")
CONNECT_TIMEOUT_SECONDS = 10


class ClusterError(AuroraError):
    """The cluster could not be reached, or lost a task's worker too many times."""


class Runner(Protocol):
    def map(self, fn: Callable[[T, Any], R], items: Sequence[T], shared: Any = None,
            progress: Callable[[int, int], None] | None = None) -> list[R]: ...

    def ship_code(self, modules: Iterable[ModuleType]) -> None: ...

    def describe(self) -> str: ...


class LocalRunner:
    """Runs every task in this process, in order."""

    def map(self, fn: Callable[[T, Any], R], items: Sequence[T], shared: Any = None,
            progress: Callable[[int, int], None] | None = None) -> list[R]:
        results = []
        for item in items:
            results.append(fn(item, shared))
            if progress is not None:
                progress(len(results), len(items))
        return results

    def ship_code(self, modules: Iterable[ModuleType]) -> None:
        """Nothing to ship: the tasks run here."""

    def describe(self) -> str:
        return "in process"


class DaskRunner:
    """Runs the tasks on the workers of a Dask scheduler (module docstring). It connects on
    first use, so a stage that runs nothing on the cluster (an incremental build) does not
    need the scheduler up."""

    def __init__(self, address: str, client: Any = None,
                 timeout: float = CONNECT_TIMEOUT_SECONDS) -> None:
        self.address, self.timeout, self._client = address, timeout, client

    @property
    def client(self) -> Any:
        if self._client is None:
            from distributed import Client

            try:
                self._client = Client(self.address, timeout=self.timeout,
                                      set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise ClusterError(f"cannot reach the Dask scheduler at {self.address}: "
                                   f"{type(exc).__name__}: {first_line(exc, 200)}"
                                   ) from None
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def map(self, fn: Callable[[T, Any], R], items: Sequence[T], shared: Any = None,
            progress: Callable[[int, int], None] | None = None) -> list[R]:
        from distributed import as_completed
        from distributed.client import FutureCancelledError
        from distributed.scheduler import KilledWorker

        if not items:
            return []
        client = self.client
        # a task, not scattered data: the scheduler recomputes it when its worker dies
        data = client.submit(_identity, shared, pure=False)
        futures = client.map(fn, list(items), [data] * len(items), pure=False)
        index = {future.key: i for i, future in enumerate(futures)}
        results: list[Any] = [None] * len(futures)
        try:
            for done, future in enumerate(as_completed(futures, loop=client.loop), 1):
                results[index[future.key]] = future.result()
                if progress is not None:
                    progress(done, len(futures))
        except KilledWorker as exc:
            task = index.get(getattr(exc, "task", None), "?")
            raise ClusterError(f"task {task} of {len(items)} ({fn.__name__}) on {self.address}"
                               f" failed: each worker that ran it died ({exc})") from None
        except FutureCancelledError as exc:
            raise ClusterError(f"{fn.__name__} on {self.address}: a task was cancelled "
                               f"({first_line(exc, 200)}): the scheduler lost it "
                               "or the connection to it") from None
        finally:
            client.cancel([*futures, data])
        return results

    def ship_code(self, modules: Iterable[ModuleType]) -> None:
        import cloudpickle

        for module in modules:
            cloudpickle.register_pickle_by_value(module)

    def describe(self) -> str:
        workers = self.client.scheduler_info(n_workers=-1).get("workers", {})
        threads = sum(w.get("nthreads", 0) for w in workers.values())
        return f"dask {self.address} ({len(workers)} workers, {threads} threads)"


def _identity(value: T) -> T:
    return value


@contextlib.contextmanager
def connect(scheduler: str | None, *, timeout: float = CONNECT_TIMEOUT_SECONDS
            ) -> Iterator[Runner]:
    """A LocalRunner without `scheduler`, else a DaskRunner of it (connected on first use,
    closed on exit). ClusterError naming the address when the scheduler cannot be reached
    within `timeout` seconds."""
    if not scheduler:
        yield LocalRunner()
        return
    runner = DaskRunner(scheduler, timeout=timeout)
    try:
        yield runner
    finally:
        runner.close()
