"""A write the storage cannot take, and a data directory that cannot hold a store, are
one-line StoreErrors naming the file or directory (never a traceback from deep inside)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import polars as pl
import pytest

from aurora import atomic
from aurora.atomic import atomic_write_bytes, atomic_write_parquet
from aurora.errors import StoreError
from aurora.oserrors import describe_os_error, storage_error
from aurora.store import Store
from aurora.store.datadir import ensure_data_dir

FRAME = pl.DataFrame({"a": [1, 2, 3]})


def full_disk_writer(*args, **kwargs):
    """What polars raises when the device fills up under its Parquet writer."""
    raise pl.exceptions.ComputeError("parquet: File out of specification: underlying IO "
                                     "error: No space left on device (os error 28)")


def test_parquet_writer_on_a_full_disk_is_one_line_naming_the_file(tmp_path, monkeypatch):
    target = tmp_path / "d" / "prices.parquet"
    atomic_write_parquet(target, FRAME)
    before = target.read_bytes()
    monkeypatch.setattr(pl.DataFrame, "write_parquet", full_disk_writer)
    with pytest.raises(StoreError) as info:
        atomic_write_parquet(target, FRAME.with_columns(pl.col("a") * 2))
    assert str(info.value) == f"no space left on device while writing {target}"
    assert info.value.exit_code == 7
    assert isinstance(info.value, OSError) and info.value.errno == errno.ENOSPC
    assert target.read_bytes() == before  # the old file is intact, no temporary is left
    assert sorted(p.name for p in target.parent.iterdir()) == ["prices.parquet"]


@pytest.mark.parametrize(("code", "reason"), [
    (errno.ENOSPC, "no space left on device"), (errno.EROFS, "read-only file system"),
    (errno.EACCES, "permission denied"), (errno.EDQUOT, "disk quota exceeded")])
def test_an_os_error_while_writing_is_one_line(tmp_path, code, reason):
    def writer(fh):
        raise OSError(code, os.strerror(code))

    target = tmp_path / "state" / "report.json"
    with pytest.raises(StoreError, match=rf"^{reason} while writing {target}$"):
        atomic.atomic_write_with(target, writer)
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_a_storage_error_is_still_an_os_error_for_best_effort_writes(tmp_path, monkeypatch):
    def no_room(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.tempfile, "mkstemp", no_room)
    with pytest.raises(OSError):  # what `contextlib.suppress(OSError)` callers rely on
        atomic_write_bytes(tmp_path / "running.json", b"{}")


def test_other_failures_keep_their_own_exception(tmp_path):
    def bug(fh):
        raise ValueError("a bug is not a full disk")

    with pytest.raises(ValueError, match="a bug is not a full disk"):
        atomic.atomic_write_with(tmp_path / "x", bug)
    assert storage_error(FileNotFoundError(errno.ENOENT, "gone", "f"), "f") is None
    assert storage_error(pl.exceptions.ComputeError("bad schema"), "f") is None


def test_describe_os_error_names_the_files():
    assert describe_os_error(FileExistsError(errno.EEXIST, "File exists", "/d")) == (
        "/d: File exists")
    assert describe_os_error(OSError(errno.ENOSPC, "No space left on device", "a", None,
                                     "b")) == "a -> b: no space left on device"


def test_a_data_directory_that_is_a_file_is_refused(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("not a directory")
    with pytest.raises(StoreError, match=rf"^data directory {afile} is a file, not a "
                                         "directory$"):
        ensure_data_dir(afile)
    with pytest.raises(StoreError, match=rf"^data directory {afile}/sub cannot be created: "
                                         rf"a file is in the way \({afile}\)$"):
        ensure_data_dir(afile / "sub")
    with pytest.raises(StoreError, match=rf"data directory {afile} is a file"), \
            Store(afile).lock():
        pass


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_a_data_directory_under_proc_is_refused():
    with pytest.raises(StoreError, match=r"^data directory /proc/aurora-data cannot be "
                                         r"created: "):
        ensure_data_dir(Path("/proc/aurora-data"))
    with pytest.raises(StoreError, match=r"^data directory /proc/self is not writable: "), \
            Store(Path("/proc/self")).lock():
        pass


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_data_directory_is_refused(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o500)
    try:
        with pytest.raises(StoreError, match=rf"^data directory {data} is not writable: "
                                             "permission denied$"):
            ensure_data_dir(data)
    finally:
        data.chmod(0o700)


def test_a_new_data_directory_is_created_owner_only(tmp_path):
    data = tmp_path / "a" / "data"
    assert ensure_data_dir(data) == data
    assert data.is_dir() and list(data.iterdir()) == []
    assert data.stat().st_mode & 0o077 == 0
