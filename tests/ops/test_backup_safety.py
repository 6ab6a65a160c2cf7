"""Backups are untrusted input: no name read from one becomes a path outside its directory,
and a backup records only a `latest` it can restore (issue items 1 and 10).

Each test crafts an unencrypted backup on disk the way an attacker (or a broken tool) could,
then checks the one-line refusal and that nothing was written outside the data directory or
the drill's scratch.
"""

import datetime as dt
import json
import os
from pathlib import Path

import pytest
from ops_helpers import prices_frame, publish

from aurora.atomic import sha256_bytes
from aurora.cli.main import main
from aurora.config import AuroraConfig
from aurora.errors import StoreError
from aurora.ops.backup import backup_store, restore_version
from aurora.ops.recovery import drill
from aurora.store import Store

D = dt.date(2024, 3, 15)
PAYLOAD = b"planted by a malicious backup\n"


def _backup(store: Store, target: Path) -> str:
    """A genuine unencrypted backup of a one-version store; returns the version."""
    version = publish(store, "fetch", **{"prices.parquet": prices_frame(D)})
    backup_store(store, str(target))
    return version


def _index(target: Path) -> dict:
    return json.loads((target / "backup.json").read_text())


def _write_index(target: Path, index: dict) -> None:
    (target / "backup.json").write_text(json.dumps(index))


def _plant_file(target: Path, version: str, name: str) -> None:
    """Add file `name` (with its blob) to `version`'s manifest and to backup.json, both
    consistent, as a crafted backup would."""
    sha = sha256_bytes(PAYLOAD)
    (target / "blobs" / sha).write_bytes(PAYLOAD)
    manifest_path = target / "versions" / version / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"][name] = {"sha256": sha, "bytes": len(PAYLOAD), "written_by": "fetch"}
    manifest_bytes = json.dumps(manifest).encode()
    manifest_path.write_bytes(manifest_bytes)
    index = _index(target)
    index["versions"][version]["files"][name] = {"sha256": sha, "bytes": len(PAYLOAD)}
    index["versions"][version]["manifest_sha256"] = sha256_bytes(manifest_bytes)
    _write_index(target, index)


def _planted(root: Path) -> list[Path]:
    """Every file under `root` holding the planted payload, except its blob in the backup."""
    return [p for p in root.rglob("*") if p.is_file() and p.read_bytes() == PAYLOAD
            and p.parent.name != "blobs"]


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message and message
    return message


def _deep(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(source data dir, backup dir, restore data dir), nested so that every `../` of a
    crafted name still lands inside tmp_path, where the test can look for it."""
    deep = tmp_path / "a" / "b" / "c" / "d"
    return deep / "src", deep / "backup", deep / "restored"


UNSAFE_FILE_NAMES = ["../../../../escaped.parquet", "nested/escaped.parquet", ".hidden",
                     "ABSOLUTE"]


@pytest.mark.parametrize("name", UNSAFE_FILE_NAMES)
def test_restore_and_drill_refuse_an_unsafe_file_name(tmp_path, name):
    src, target, restored = _deep(tmp_path)
    version = _backup(Store(src), target)
    if name == "ABSOLUTE":
        name = str(tmp_path / "absolute-escaped.parquet")
    _plant_file(target, version, name)

    with pytest.raises(StoreError) as info:
        restore_version(Store(restored), str(target))
    assert "unsafe file name" in _one_line(info) and str(target) in str(info.value)
    assert Store(restored).current_version() is None

    scratch = tmp_path / "a" / "scratch"
    report = drill(str(target), AuroraConfig(data_dir=src), scratch=scratch,
                   validate=lambda store, cfg: (True, []), rebuild=lambda store, cfg: None)
    assert not report.ok and report.version is None
    assert report.summary_lines()[0] == f"drill FAILED: nothing restored from {target}"
    assert "unsafe file name" in report.problems[0]
    assert _planted(tmp_path) == [] and not scratch.exists()


def test_a_version_name_that_leaves_the_archive_is_refused(tmp_path):
    src, target, restored = _deep(tmp_path)
    target = target.parent / "bk" / "backup"  # its `../../v` is not the archive's
    version = _backup(Store(src), target)
    index = _index(target)
    evil = "../../v"
    # what `versions/../../v/manifest.json` reads: a manifest that parses
    outside_manifest = target / "versions" / evil / "manifest.json"
    outside_manifest.parent.mkdir(parents=True)
    good = (target / "versions" / version / "manifest.json").read_bytes()
    outside_manifest.write_bytes(good)
    index["versions"][evil] = index["versions"][version]
    index["latest"] = evil
    _write_index(target, index)

    other = Store(restored)
    with pytest.raises(StoreError) as info:
        restore_version(other, str(target))
    assert "unsafe version name in backup.json '../../v'" in _one_line(info)
    with pytest.raises(StoreError, match=r"unsafe version name in backup\.json"):
        restore_version(other, str(target), version=version)  # the whole index is refused
    del index["versions"][evil]  # `latest` alone names it
    _write_index(target, index)
    with pytest.raises(StoreError) as info:
        restore_version(other, str(target))
    assert "unsafe latest version in backup.json '../../v'" in _one_line(info)
    assert not (other.archive / evil).exists() and not (restored.parent / "v").exists()
    assert not other.latest.is_symlink()


def test_a_version_asked_for_by_name_must_be_plain(tmp_path):
    src, target, restored = _deep(tmp_path)
    _backup(Store(src), target)
    with pytest.raises(StoreError, match=r"unsafe version name '\.\./\.\./x'"):
        restore_version(Store(restored), str(target), version="../../x")
    assert not (restored.parent / "x").exists()


@pytest.mark.parametrize("field, value, message", [
    ("sha256", "../../../etc/passwd", "is not a sha256 hex digest"),
    ("manifest_sha256", "ABC", "is not a sha256 hex digest"),
    ("name", "manifest.json", "reserved for the manifest"),
])
def test_backup_json_fields_are_checked_before_use(tmp_path, field, value, message):
    src, target, restored = _deep(tmp_path)
    version = _backup(Store(src), target)
    index = _index(target)
    entry = index["versions"][version]
    if field == "sha256":
        entry["files"]["prices.parquet"]["sha256"] = value
    elif field == "manifest_sha256":
        entry["manifest_sha256"] = value
    else:
        entry["files"][value] = entry["files"]["prices.parquet"]
    _write_index(target, index)
    with pytest.raises(StoreError) as info:
        restore_version(Store(restored), str(target))
    assert message in _one_line(info) and "backup.json" in str(info.value)
    with pytest.raises(StoreError, match=message):  # nor is it added to
        backup_store(Store(src), str(target))


def test_a_manifest_naming_another_version_is_refused(tmp_path):
    src, target, restored = _deep(tmp_path)
    version = _backup(Store(src), target)
    index = _index(target)
    index["versions"]["renamed"] = index["versions"].pop(version)
    index["latest"] = "renamed"
    _write_index(target, index)
    os.rename(target / "versions" / version, target / "versions" / "renamed")
    with pytest.raises(StoreError) as info:
        restore_version(Store(restored), str(target))
    assert f"names version {version}, not renamed" in _one_line(info)
    assert Store(restored).versions() == []


def test_cli_drill_fails_on_a_refused_backup(tmp_path, capsys):
    src, target, _ = _deep(tmp_path)
    version = _backup(Store(src), target)
    _plant_file(target, version, "../../../../escaped.parquet")
    scratch = tmp_path / "a" / "scratch"
    code = main(["drill", "--from", str(target), "--scratch", str(scratch),
                 "--data-dir", str(src)])
    out, err = capsys.readouterr()
    assert code == 5
    assert out.splitlines()[0] == f"drill FAILED: nothing restored from {target}"
    [line] = err.strip().splitlines()
    assert line.startswith("error: drill failed: restore failed: ") and "unsafe file name" in line
    assert _planted(tmp_path) == []
    assert Store(src).current_version() == version and Store(src).verify() == []


def test_cli_drill_refuses_a_scratch_directory_that_holds_files(tmp_path, capsys):
    src, target, _ = _deep(tmp_path)
    _backup(Store(src), target)
    scratch = tmp_path / "mine"
    scratch.mkdir()
    (scratch / "notes.txt").write_text("keep me")
    assert main(["drill", "--from", str(target), "--scratch", str(scratch),
                 "--data-dir", str(src)]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert (scratch / "notes.txt").read_text() == "keep me"


# -- item 10: the backup's latest is always restorable -----------------------------------
def _dangle(store: Store) -> None:
    """Point `latest` at a version that does not exist (a lost or hand-removed directory)."""
    tmp = store.root / ".latest-test"
    os.symlink(Path("archive") / "20990101T000000000000Z-ghost", tmp)
    os.replace(tmp, store.latest)


def test_backup_refuses_a_dangling_latest(store, tmp_path, capsys):
    v1 = publish(store, "fetch", **{"prices.parquet": prices_frame(D)})
    _dangle(store)
    target = tmp_path / "b"
    with pytest.raises(StoreError) as info:
        backup_store(store, str(target))
    assert "20990101T000000000000Z-ghost" in _one_line(info) and "dangling" in str(info.value)
    assert not (target / "backup.json").exists()

    store.point_latest_to(v1)
    backup_store(store, str(target))
    before = (target / "backup.json").read_bytes()
    _dangle(store)
    assert main(["backup", "--to", str(target), "--data-dir", str(store.root)]) == 7
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: ") and "dangling" in line
    assert (target / "backup.json").read_bytes() == before  # still restorable
    assert restore_version(Store(tmp_path / "r"), str(target)).version == v1


def test_a_recorded_latest_missing_from_the_backup_fails_restore_and_drill(store, tmp_path):
    v1 = publish(store, "fetch", **{"prices.parquet": prices_frame(D)})
    target = tmp_path / "b"
    backup_store(store, str(target))
    index = _index(target)
    index["latest"] = "20990101T000000000000Z-ghost"  # as an older Aurora could record
    _write_index(target, index)
    with pytest.raises(StoreError) as info:
        restore_version(Store(tmp_path / "r"), str(target))
    assert "records latest version 20990101T000000000000Z-ghost, which is not in the " \
        "backup; choose one with --version" in _one_line(info)
    report = drill(str(target), AuroraConfig(data_dir=store.root),
                   validate=lambda s, c: (True, []), rebuild=lambda s, c: None)
    assert not report.ok and "records latest version" in report.problems[0]
    assert restore_version(Store(tmp_path / "r"), str(target), version=v1).version == v1
    backup_store(store, str(target))  # the next backup records a restorable latest again
    assert _index(target)["latest"] == v1
