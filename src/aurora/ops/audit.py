"""Append-only JSON-lines audit log of every command: `data/audit/audit.jsonl` (0600).

One line per command, written when it ends (by `aurora.ops.runner.run_context`, the one
place a command is recorded):
`{"time", "ended_at", "user", "uid", "pid", "command", "argv", "outcome", "exit_code",
"error", "duration_seconds", "version_before", "version_after", "read": [{path, sha256}],
"written": [{path, sha256, bytes}], "deleted": [...], "runs": [run ids]}`.

- `written` is derived from the store: every file of a version published during the command
  whose (name, sha256) was not in the version `latest` pointed to before (paths relative to
  the data directory). `deleted` lists versions that disappeared (prune).
- `read` lists the inputs the command named (configuration, universe or imported file, with
  their sha256) and the manifest of the version the command started from.
- Secret values never appear in argv, whoever defines the option (`safe_argv`): it is
  redacted against the known secrets; the value of any option whose name looks secret
  (`secret`, `token`, `password`, `key`, `auth`, ...) is masked in every form (`--name V`,
  `--name=V`, `-o name=V`, `--storage-option name=V`, `--storage-option=name=V`,
  `-oname=V`); a URL given to a webhook-like option (`--webhook-url`, `-o hook=...`) loses
  its path (webhook tokens live there); and every other URL loses its user info and query.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import getpass
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aurora.atomic import private_dir, sha256_file
from aurora.errors import AuroraError
from aurora.ops.history import create_private_file
from aurora.redaction import MASK, redact, redact_url
from aurora.store import MANIFEST, Store

AUDIT_FILE = Path("audit") / "audit.jsonl"
_MAX_HASH_BYTES = 1 << 30
# an option (or KEY of KEY=VALUE) whose lower-cased name contains one of these carries a
# secret: its value is masked whole
_SECRETISH = ("secret", "token", "password", "passwd", "passphrase", "pwd", "key",
              "credential", "auth", "cookie", "private", "signature", "session",
              "connection_string", "conn_str", "sas")
# ... or a URL whose path holds a token (Slack and similar webhooks): the path is masked
_URL_IN_PATH = ("hook",)


class AuditLog:
    """The audit log of one data directory. Lines are only ever appended."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / AUDIT_FILE

    def append(self, record: dict[str, Any]) -> None:
        """Append one record as a JSON line (locked, fsync'd; the file stays 0600)."""
        private_dir(self.path.parent)
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
        files = ({n: e.sha256 for n, e in store.manifest(version).files.items()}
                 if version else {})
        return StoreSnapshot(version, frozenset(store.versions()), files)
    except (AuroraError, OSError):
        return StoreSnapshot(None, frozenset(), {})


def store_changes(store: Store, before: StoreSnapshot, after: StoreSnapshot
                  ) -> tuple[list[dict[str, Any]], list[str]]:
    """(files written by versions published in between, versions deleted)."""
    written = []
    for version in sorted(after.versions - before.versions):
        try:
            files = store.manifest(version).files
        except AuroraError:
            continue
        for name, entry in sorted(files.items()):
            if before.files.get(name) != entry.sha256:
                written.append({"path": f"archive/{version}/{name}", "sha256": entry.sha256,
                                "bytes": entry.bytes})
    return written, sorted(before.versions - after.versions)


def audit_record(*, store: Store, command: str, argv: Sequence[str], started_at: str,
                 seconds: float, read: Sequence[dict[str, Any]], runs: Sequence[str],
                 outcome: str, exit_code: int, error: str | None, before: StoreSnapshot,
                 after: StoreSnapshot, secrets: tuple[str, ...]) -> dict[str, Any]:
    """The audit line of one command (see the module docstring)."""
    written, deleted = store_changes(store, before, after)
    read = list(read)
    if before.version:
        with contextlib.suppress(OSError):
            manifest = store.archive / before.version / MANIFEST
            read.append({"path": f"archive/{before.version}/{MANIFEST}",
                         "sha256": sha256_file(manifest)})
    return {
        "time": started_at,
        "ended_at": dt.datetime.now(dt.UTC).isoformat(),
        "user": os_user(),
        "uid": os.getuid(),
        "pid": os.getpid(),
        "command": command,
        "argv": safe_argv(list(argv), secrets),
        "outcome": outcome,
        "exit_code": exit_code,
        "error": error and redact(error, secrets),
        "duration_seconds": round(seconds, 3),
        "version_before": before.version,
        "version_after": after.version,
        "read": read,
        "written": written,
        "deleted": deleted,
        "runs": list(runs),
    }


def file_digest(path: Path) -> str | None:
    """sha256 of an input file worth hashing (None when absent or over 1 GiB)."""
    if not path.is_file() or path.stat().st_size >= _MAX_HASH_BYTES:
        return None
    return sha256_file(path)


def safe_argv(argv: list[str], secrets: tuple[str, ...]) -> list[str]:
    """argv with every secret-bearing value masked (see the module docstring).

    Works from the names alone, so it covers options Aurora does not define (a plugin's
    `--secret-key S`) and storage options for any filesystem. A long option whose name looks
    secret masks the next argument when its value is not attached (`--api-token T`), so a
    boolean flag with such a name also masks the argument after it: masking too much is the
    safe side.
    """
    out: list[str] = []
    pending: str | None = None  # the name of an option whose value is the next argument
    for arg in argv:
        text = redact(arg, secrets)
        if pending is not None:
            out.append(_option_value(pending, text))
            pending = None
            continue
        if text.startswith("--") and len(text) > 2:
            name, sep, value = text[2:].partition("=")
            if sep:
                text = f"--{name}={_option_value(name, value)}"
            elif _kind(name):
                pending = name
        elif text.startswith("-o") and len(text) > 2:  # `-oKEY=VALUE`, the short storage option
            text = "-o" + _plain_value(text[2:])
        elif not text.startswith("-"):
            text = _plain_value(text)
        out.append(text)
    return out


def _kind(name: str) -> str | None:
    """"secret" (mask the value), "url" (mask a URL's path) or None, from an option's name."""
    low = name.lower()
    if any(word in low for word in _SECRETISH):
        return "secret"
    if any(word in low for word in _URL_IN_PATH):
        return "url"
    return None


def _option_value(name: str, value: str) -> str:
    """The value of option `name`, made safe."""
    kind = _kind(name)
    if kind == "secret":
        return MASK
    if kind == "url":
        return redact_url(value, keep_path=False) if "://" in value else MASK
    return _plain_value(value)


def _plain_value(value: str) -> str:
    """A value without an option name of its own: `KEY=VALUE` is judged by KEY (storage
    options), anything else only loses URL credentials."""
    key, sep, rest = value.partition("=")
    if sep and key.strip() and "://" not in key:
        return f"{key}={_option_value(key.strip(), rest)}"
    return redact_url(value, keep_path=True) if "://" in value else value
