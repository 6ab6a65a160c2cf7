"""Fault injection at the file-operation level, loaded into an `aurora` subprocess.

    python -c "import inject; inject.install(); from aurora.cli.main import main; ..."

`install()` wraps the operations through which Aurora changes the disk: `open` for writing,
`os.replace`, `os.rename`, `os.link`, `os.unlink`, `os.fsync`, `shutil.copyfile`,
`os.truncate`. Each call is counted; the environment says what happens at call number
`AURORA_FAULT_AT` (1-based):

- `AURORA_FAULT_KIND=kill`: the process SIGKILLs itself before the operation (a crash, a
  power cut, an OOM kill);
- `AURORA_FAULT_KIND=enospc`: the operation raises OSError(ENOSPC), as on a full disk;
- `AURORA_FAULT_KIND=count` (or unset): nothing happens; at exit the number of operations is
  written to `AURORA_FAULT_COUNT_FILE`, so a campaign knows how many points a command has.

This is test code: it is never imported by Aurora itself.
"""

from __future__ import annotations

import atexit
import builtins
import errno
import functools
import os
import shutil
import signal
from collections.abc import Callable
from typing import Any

_WRITE_MODES = ("w", "a", "x", "+")


class _Counter:
    def __init__(self, kind: str, at: int) -> None:
        self.kind, self.at, self.calls = kind, at, 0

    def hit(self, what: str) -> None:
        self.calls += 1
        if self.calls != self.at:
            return
        if self.kind == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.kind == "enospc":
            raise OSError(errno.ENOSPC, "No space left on device (injected)", what)


def _wrap(counter: _Counter, name: str, fn: Callable[..., Any],
          counts: Callable[..., bool] = lambda *a, **k: True) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if counts(*args, **kwargs):
            counter.hit(f"{name}({args[0] if args else ''})")
        return fn(*args, **kwargs)

    return wrapped


def _writes(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> bool:
    return isinstance(file, str | bytes | os.PathLike) and any(m in mode for m in _WRITE_MODES)


def install() -> None:
    """Wrap the file operations (see the module docstring) for this process."""
    kind = os.environ.get("AURORA_FAULT_KIND", "count")
    counter = _Counter(kind, int(os.environ.get("AURORA_FAULT_AT", "0")))
    builtins.open = _wrap(counter, "open", builtins.open, _writes)
    for name in ("replace", "rename", "link", "unlink", "fsync", "truncate"):
        setattr(os, name, _wrap(counter, name, getattr(os, name)))
    shutil.copyfile = _wrap(counter, "copyfile", shutil.copyfile)
    report = os.environ.get("AURORA_FAULT_COUNT_FILE")
    if report:
        real_open, calls = builtins.open, counter

        def write_count() -> None:
            with real_open(report, "w") as fh:  # the wrapped open: counted after the fact
                fh.write(str(calls.calls))

        atexit.register(write_count)
