"""What Aurora creates is owner-only whatever the umask (issue item 18); only the metrics,
read by node exporter, are readable by others (0755 directory, 0644 file)."""

import datetime as dt
import os
import stat
from pathlib import Path

import pytest
from ops_helpers import prices_frame, publish

from aurora.atomic import atomic_write_bytes, private_dir
from aurora.config import AuroraConfig
from aurora.ops.backup import backup_store, restore_version
from aurora.ops.runner import run_context
from aurora.store import Store

D = dt.date(2024, 3, 15)


@pytest.fixture()
def open_umask():
    """The most permissive umask, restored afterwards."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _tree(root: Path) -> tuple[dict[str, int], dict[str, int]]:
    """({dir: mode}, {file: mode}) under `root`, root included, paths relative to it."""
    dirs, files = {".": _mode(root)}, {}
    for path in root.rglob("*"):
        if path.is_symlink():
            continue
        rel = str(path.relative_to(root))
        (dirs if path.is_dir() else files)[rel] = _mode(path)
    return dirs, files


def test_private_dir_and_atomic_writes_ignore_the_umask(tmp_path, open_umask):
    made = private_dir(tmp_path / "a" / "b" / "c")
    assert [_mode(p) for p in (made.parent.parent, made.parent, made)] == [0o700] * 3
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    private_dir(shared / "inner")
    assert _mode(shared) == 0o755 and _mode(shared / "inner") == 0o700  # existing: kept
    assert _mode(private_dir(tmp_path / "m", 0o755)) == 0o755
    atomic_write_bytes(tmp_path / "x" / "y" / "file.bin", b"data")
    assert _mode(tmp_path / "x") == _mode(tmp_path / "x" / "y") == 0o700
    assert _mode(tmp_path / "x" / "y" / "file.bin") == 0o600
    (tmp_path / "plain").write_text("not a directory")
    with pytest.raises(FileExistsError):
        private_dir(tmp_path / "plain")


def test_data_directory_and_backups_are_owner_only_under_umask_0(tmp_path, open_umask):
    store = Store(tmp_path / "new" / "data")  # Aurora creates every directory
    cfg = AuroraConfig(data_dir=store.root)
    with run_context(store, cfg, "fetch") as run, run.stage("fetch"):
        publish(store, "fetch", **{"prices.parquet": prices_frame(D)})
    publish(store, "build", **{"features.parquet": prices_frame(D, ("X",))})
    target = tmp_path / "backups" / "aurora"
    with run_context(store, cfg, "backup"):
        backup_store(store, str(target))

    dirs, files = _tree(store.root)
    assert dirs.pop("metrics") == 0o755 and files.pop("metrics/aurora.prom") == 0o644
    assert {"archive", "state", "audit"} <= set(dirs)
    assert len([d for d in dirs if d.startswith("archive/")]) == 2  # both versions
    assert {d: m for d, m in dirs.items() if m != 0o700} == {}
    for name in ("aurora.db", "audit/audit.jsonl", ".lock"):
        assert files.pop(name) == 0o600
    # version files are owner-only or read-only, never writable by others
    assert {f: m for f, m in files.items() if m & 0o022} == {}
    assert {f: m for f, m in files.items() if not f.startswith("archive/") and m != 0o600} == {}

    dirs, files = _tree(target)
    assert (tmp_path / "backups").stat().st_mode & 0o777 == 0o700
    assert {"blobs", "versions"} <= set(dirs)
    assert {d: m for d, m in dirs.items() if m != 0o700} == {}
    assert files and {f: m for f, m in files.items() if m != 0o600} == {}

    other = Store(tmp_path / "restored" / "data")
    restore_version(other, str(target))
    dirs, _ = _tree(other.root)
    assert {d: m for d, m in dirs.items() if m != 0o700} == {}
