"""Append-only JSON-lines audit log of every command: `data/audit/audit.jsonl` (0600).

One line per command, written when it ends:
`{"time", "ended_at", "user", "uid", "pid", "command", "argv", "outcome", "exit_code",
"error", "duration_seconds", "version_before", "version_after", "read": [{path, sha256}],
"written": [{path, sha256, bytes}], "deleted": [...], "runs": [run ids]}`.

- `written` is derived from the store: every file of a version published during the command
  whose (name, sha256) was not in the version `latest` pointed to before (paths relative to
  the data directory). `deleted` lists versions that disappeared (prune).
- `read` lists input files named on the command line (with their sha256), the version
  manifest the command started from, and whatever the command noted via `note_read`.
- Secret values never appear: argv is redacted against the known secrets, URLs lose their
  user info and query, and `--storage-option` values whose key looks secret are masked.

`audit_cli` wraps the CLI's dispatch generically. Library code (`run_context`) adds to the
active entry through `current_entry()`, a context variable (not a process-wide singleton), or
writes its own line when no CLI entry is active (notebook use).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import fcntl
import getpass
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aurora.atomic import sha256_file
from aurora.config import AuroraConfig, load_config
from aurora.errors import AuroraError
from aurora.ops.history import create_private_file
from aurora.redaction import MASK, redact, redact_url, secret_values
from aurora.store import MANIFEST, Store

AUDIT_FILE = Path("audit") / "audit.jsonl"
_MAX_HASH_BYTES = 1 << 30
_SECRETISH = ("secret", "token", "password", "passwd", "key", "credential")
# Stage commands that do not open a run_context themselves still get a run-history row
# (outcome, timing, failed-run alert, metrics). Read-only commands (status) do not.
RECORDED_COMMANDS = frozenset({"fetch", "import", "validate", "build", "predict", "evaluate"})


class AuditLog:
    """The audit log of one data directory. Lines are only ever appended."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / AUDIT_FILE

    def append(self, record: dict[str, Any]) -> None:
        """Append one record as a JSON line (locked, fsync'd; the file stays 0600)."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        create_private_file(self.path)
        line = (json.dumps(record, default=str, separators=(",", ":")) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def records(self) -> list[dict[str, Any]]:
        """Every record, oldest first (an unreadable trailing line from a crash is skipped)."""
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                out.append(json.loads(line))
        return out


def os_user() -> str:
    """The OS user running this process (the uid when it has no name)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


@dataclass(frozen=True)
class StoreSnapshot:
    version: str | None
    versions: frozenset[str]
    files: dict[str, str]  # name -> sha256 of the current version


def snapshot(store: Store) -> StoreSnapshot:
    """What the store looks like now (an unreadable store reads as empty)."""
    try:
        version = store.current_version()
        files = ({n: m.get("sha256", "") for n, m in store.manifest(version)["files"].items()}
                 if version else {})
        return StoreSnapshot(version, frozenset(store.versions()), files)
    except (AuroraError, OSError, KeyError):
        return StoreSnapshot(None, frozenset(), {})


def store_changes(store: Store, before: StoreSnapshot, after: StoreSnapshot
                  ) -> tuple[list[dict[str, Any]], list[str]]:
    """(files written by versions published in between, versions deleted)."""
    written = []
    for version in sorted(after.versions - before.versions):
        try:
            files = store.manifest(version).get("files", {})
        except AuroraError:
            continue
        for name, meta in sorted(files.items()):
            if before.files.get(name) != meta.get("sha256"):
                written.append({"path": f"archive/{version}/{name}", "sha256": meta.get("sha256"),
                                "bytes": meta.get("bytes")})
    return written, sorted(before.versions - after.versions)


@dataclass
class AuditEntry:
    """The audit record being built for the command in progress."""

    command: str
    argv: list[str]
    started_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat())
    started: float = field(default_factory=time.monotonic)
    read: list[dict[str, Any]] = field(default_factory=list)
    written: list[dict[str, Any]] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)

    def note_read(self, path: Path | str, sha256: str | None = None) -> None:
        path = str(path)
        if any(r["path"] == path for r in self.read):
            return
        if sha256 is None and Path(path).is_file() and Path(path).stat().st_size < _MAX_HASH_BYTES:
            sha256 = sha256_file(Path(path))
        self.read.append({"path": path, "sha256": sha256})

    def note_written(self, path: Path | str, sha256: str | None = None) -> None:
        path = str(path)
        if sha256 is None and Path(path).is_file():
            sha256 = sha256_file(Path(path))
        self.written.append({"path": path, "sha256": sha256})

    def record(self, *, outcome: str, exit_code: int, error: str | None,
               before: StoreSnapshot, after: StoreSnapshot, store: Store,
               secrets: tuple[str, ...]) -> dict[str, Any]:
        written, deleted = store_changes(store, before, after)
        if before.version:
            manifest = store.archive / before.version / MANIFEST
            with contextlib.suppress(OSError):
                self.note_read(f"archive/{before.version}/{MANIFEST}", sha256_file(manifest))
        return {
            "time": self.started_at,
            "ended_at": dt.datetime.now(dt.UTC).isoformat(),
            "user": os_user(),
            "uid": os.getuid(),
            "pid": os.getpid(),
            "command": self.command,
            "argv": safe_argv(self.argv, secrets),
            "outcome": outcome,
            "exit_code": exit_code,
            "error": error and redact(error, secrets),
            "duration_seconds": round(time.monotonic() - self.started, 3),
            "version_before": before.version,
            "version_after": after.version,
            "read": self.read,
            "written": [*written, *self.written],
            "deleted": deleted,
            "runs": self.runs,
        }


_current: contextvars.ContextVar[AuditEntry | None] = contextvars.ContextVar(
    "aurora_audit_entry", default=None)


def current_entry() -> AuditEntry | None:
    """The audit entry of the CLI command in progress in this context, if any."""
    return _current.get()


def safe_argv(argv: list[str], secrets: tuple[str, ...]) -> list[str]:
    """argv with secret values, URL credentials and secret-looking storage options masked."""
    out = []
    for arg in argv:
        text = redact(arg, secrets)
        if "://" in text:
            text = redact_url(text, keep_path=True)
        # `--storage-option=secret=X` and `-osecret=X` carry KEY=VALUE after the flag.
        flag, body = "", text
        if text.startswith("--") and "=" in text:
            flag, body = text.split("=", 1)
            flag += "="
        elif text.startswith("-o") and len(text) > 2:
            flag, body = "-o", text[2:]
        key, sep, _value = body.partition("=")
        if sep and not key.startswith("-") and any(s in key.lower() for s in _SECRETISH):
            text = f"{flag}{key}={MASK}"
        out.append(text)
    return out


def _option(argv: list[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def resolve_data_dir(argv: list[str]) -> tuple[Path, AuroraConfig | None]:
    """The data directory a command line will use, and its configuration (best effort)."""
    flag = _option(argv, "--data-dir")
    config_file = _option(argv, "--config")
    try:
        config: AuroraConfig | None = load_config(Path(config_file) if config_file else None)
    except AuroraError:
        config = None
    if flag:
        return Path(flag), config
    if config is not None:
        return config.data_dir, config
    return Path(os.environ.get("AURORA_DATA_DIR") or "data"), None


def _command_name(argv: list[str]) -> str | None:
    skip_next = False
    for arg in argv:
        if skip_next:
            skip_next = False
            continue
        if arg in ("--data-dir", "--config"):
            skip_next = True
        elif not arg.startswith("-"):
            return arg
    return None


def _input_files(argv: list[str]) -> list[Path]:
    files = []
    for arg in argv:
        candidate = Path(arg.split("=", 1)[1] if arg.startswith("--") and "=" in arg else arg)
        with contextlib.suppress(OSError, ValueError):
            if candidate.is_file():
                files.append(candidate)
    return files


@contextlib.contextmanager
def _activate(entry: AuditEntry) -> Iterator[None]:
    token = _current.set(entry)
    try:
        yield
    finally:
        _current.reset(token)


def audit_cli(argv: list[str], dispatch: Callable[[], tuple[int, str | None]]) -> int:
    """Run `dispatch()` (returns exit code and one-line error) and audit the command.

    Help and usage-only invocations, and commands whose data directory does not exist when
    they end, are not audited (they read and wrote nothing there). Audit failures never
    change the command's outcome; they are reported on stderr. Stage commands in
    `RECORDED_COMMANDS` that recorded no run of their own get a minimal run-history row.
    """
    command = _command_name(argv)
    if command is None or "--help" in argv or "-h" in argv:
        return dispatch()[0]
    data_dir, config = resolve_data_dir(argv)
    if command == "demo" and _option(argv, "--data-dir") is None:
        data_dir = Path("data")  # the demo writes to ./data unless told otherwise
    store = Store(data_dir)
    entry = AuditEntry(command=command, argv=list(argv))
    for path in _input_files(argv):
        with contextlib.suppress(OSError):
            entry.note_read(path)
    before = snapshot(store)
    code, error, outcome = 1, None, "error"
    try:
        with _activate(entry):
            code, error = dispatch()
        outcome = "ok" if code == 0 else "error"
    except BaseException as exc:
        outcome, error = "crashed", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        if store.root.is_dir():
            try:
                after = snapshot(store)
                if command in RECORDED_COMMANDS and not entry.runs and config is not None:
                    from aurora.ops.runner import record_command_run  # runner imports us

                    entry.runs.append(record_command_run(
                        store, config, command, started_at=entry.started_at,
                        seconds=time.monotonic() - entry.started, exit_code=code, error=error,
                        before=before, after=after).id)
                record = entry.record(outcome=outcome, exit_code=code, error=error,
                                      before=before, after=after, store=store,
                                      secrets=secret_values(config))
                AuditLog(store.root).append(record)
            except OSError as exc:
                import sys

                print(f"warning: could not write the audit log: {exc.strerror}", file=sys.stderr)
    return code
