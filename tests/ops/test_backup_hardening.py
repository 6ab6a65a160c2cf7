"""Crafted or failing backups end in a one-line StoreError, never a traceback:

- every field of an encrypted backup's encryption record is checked before any key is
  derived (base64, lengths, scrypt parameters bounded to what Aurora writes);
- a deeply nested backup.json is refused as such;
- restore never replaces a local manifest that parses with another one;
- errors of the backup's filesystem (e.g. botocore's, quoting credentials of the URL) are
  reported by type name only.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import fsspec
import pytest
from ops_helpers import prices_frame, publish

from aurora.atomic import sha256_bytes
from aurora.cli.main import main
from aurora.config import AuroraConfig
from aurora.errors import ConfigError, StoreError
from aurora.ops import backuptarget as backup_module
from aurora.ops import crypto
from aurora.ops.backup import backup_store, backup_versions, restore_version
from aurora.ops.recovery import drill
from aurora.store import Store

D = dt.date(2024, 3, 15)
KEY = "correct horse battery staple"


def _one_line(info: pytest.ExceptionInfo) -> str:
    message = str(info.value)
    assert message and "\n" not in message
    return message


def _stderr_line(capsys: pytest.CaptureFixture[str]) -> str:
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: ")
    return line


def _index_path(target: Path) -> Path:
    return target / "backup.json"


# -- item 1: the encryption record is checked before use ---------------------------------
@pytest.fixture(scope="module")
def encrypted(tmp_path_factory) -> tuple[Path, dict]:
    """(a source data dir, the backup.json) of a genuine encrypted one-version backup; each
    test writes its own copy of the backup (scrypt runs once per module)."""
    root = tmp_path_factory.mktemp("enc")
    store = Store(root / "src")
    publish(store, "fetch", **{"prices.parquet": prices_frame(D)})
    backup_store(store, str(root / "backup"), key=KEY)
    return root / "backup", json.loads(_index_path(root / "backup").read_text())


def _b64(size: int) -> str:
    return base64.b64encode(bytes(range(size))).decode()


BAD_RECORDS: list[tuple[str, Any, str]] = [
    ("salt", "!!not base64!!", "field salt is not valid base64"),
    ("salt", "QUJD", "field salt must be base64 of 16 bytes, not 3"),
    ("salt", 16, "field salt must be base64 of 16 bytes"),
    ("key_check", "abc", "field key_check is not valid base64"),
    ("key_check", _b64(30), "field key_check must be base64 of 67 bytes, not 30"),
    ("key_check", "A" * 100_000, "field key_check must be base64 of 67 bytes"),
    ("n", 1000, "field n must be a power of two from 2 to 131072"),
    ("n", 1, "field n must be a power of two from 2 to 131072"),
    ("n", 2**20, "field n must be an integer from 1 to 131072"),
    ("n", "32768", "field n must be an integer from 1 to 131072"),
    ("n", True, "field n must be an integer from 1 to 131072"),
    ("r", 64, "field r must be an integer from 1 to 8"),
    ("r", 0, "field r must be an integer from 1 to 8"),
    ("p", 16, "field p must be an integer from 1 to 4"),
    ("p", 1.0, "field p must be an integer from 1 to 4"),
    ("kdf", "pbkdf2", "field kdf must be 'scrypt'"),
    ("cipher", None, "field cipher must be 'AES-256-GCM'"),
    ("record", None, "the encryption record is missing or not an object"),
]


def _with_record(encrypted: tuple[Path, dict], tmp_path: Path, field: str, value: Any) -> Path:
    source, index = encrypted
    target = tmp_path / "backup"
    (target / "versions").mkdir(parents=True)
    for path in source.rglob("*"):
        if path.is_file():
            (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
            (target / path.relative_to(source)).write_bytes(path.read_bytes())
    index = json.loads(json.dumps(index))
    if field == "record":
        index["encryption"] = value
    elif value is None:
        del index["encryption"][field]
    else:
        index["encryption"][field] = value
    _index_path(target).write_text(json.dumps(index))
    return target


@pytest.mark.parametrize("field, value, message", BAD_RECORDS,
                         ids=[f"{f}-{str(v)[:12]}" for f, v, _ in BAD_RECORDS])
def test_a_bad_encryption_record_is_refused_before_any_key_is_derived(
        encrypted, tmp_path, monkeypatch, field, value, message):
    target = _with_record(encrypted, tmp_path, field, value)

    def no_derivation(*args: object) -> None:
        raise AssertionError("a key was derived from an unchecked record")

    monkeypatch.setattr(crypto, "_derive", no_derivation)
    restored = Store(tmp_path / "restored")
    with pytest.raises(StoreError) as info:
        restore_version(restored, str(target), key=KEY)
    assert _one_line(info) == f"{target}: backup.json: the encryption record" + (
        f": {message}" if field != "record" else message[len("the encryption record"):])
    assert restored.versions() == [] and restored.current_version() is None
    with pytest.raises(StoreError, match="the encryption record"):  # nor is it added to
        backup_store(Store(encrypted[0].parent / "src"), str(target), key=KEY)

    report = drill(str(target), AuroraConfig(data_dir=tmp_path / "data"), key=KEY,
                   scratch=tmp_path / "scratch", validate=lambda s, c: (True, []),
                   rebuild=lambda s, c: None)
    assert not report.ok and report.version is None
    assert report.problems == [f"restore failed: {info.value}"]


@pytest.mark.parametrize("field, value", [("salt", "@@@@"), ("key_check", "abc"),
                                          ("n", 1000)])
def test_cli_restore_and_drill_give_one_line_for_a_bad_record(
        encrypted, tmp_path, monkeypatch, capsys, field, value):
    target = _with_record(encrypted, tmp_path, field, value)
    monkeypatch.setenv("AURORA_BACKUP_KEY", KEY)
    assert main(["restore", "--from", str(target), "--data-dir", str(tmp_path / "r")]) == 7
    line = _stderr_line(capsys)
    assert f"the encryption record: field {field}" in line and str(target) in line
    assert KEY not in line
    assert main(["drill", "--from", str(target), "--scratch", str(tmp_path / "s"),
                 "--data-dir", str(tmp_path / "d")]) == 5
    line = _stderr_line(capsys)
    assert line.startswith("error: drill failed: restore failed: ")
    assert f"the encryption record: field {field}" in line


def test_open_key_record_checks_the_record_itself():
    cipher, record = crypto.new_key_record(KEY)
    assert crypto.check_key_record(record, "rec") == crypto.KeyRecord(
        base64.b64decode(record["salt"]), base64.b64decode(record["key_check"]), 2**15, 8, 1)
    with pytest.raises(StoreError, match=r"^rec: field n must be a power of two"):
        crypto.open_key_record(KEY, {**record, "n": 3}, "rec")
    with pytest.raises(StoreError, match=r"^rec: field salt is not valid base64$"):
        crypto.open_key_record(KEY, {**record, "salt": "a=b="}, "rec")
    opened = crypto.open_key_record(KEY, record, "rec")
    blob = cipher.encrypt(b"data", sha256_bytes(b"data"))
    assert opened.decrypt(blob, sha256_bytes(b"data"), "x") == b"data"


# -- item 1: a deeply nested backup.json -------------------------------------------------
def _plain_backup(tmp_path: Path) -> tuple[Store, Path, str]:
    store = Store(tmp_path / "src")
    version = publish(store, "fetch", **{"prices.parquet": prices_frame(D)})
    target = tmp_path / "backup"
    backup_store(store, str(target))
    return store, target, version


@pytest.mark.parametrize("how", ["beyond the parser", "beyond Aurora's shape"])
def test_a_deeply_nested_backup_json_is_refused(tmp_path, capsys, how):
    store, target, _ = _plain_backup(tmp_path)
    if how == "beyond the parser":
        _index_path(target).write_text("[" * 200_000 + "]" * 200_000)
    else:  # parses, but names built from it would recurse when shown or written back
        index = json.loads(_index_path(target).read_text())
        index["latest"] = json.loads("[" * 900 + "]" * 900)
        _index_path(target).write_text(json.dumps(index))
    expected = f"{target}: backup.json is not valid JSON (nested too deeply)"
    with pytest.raises(StoreError) as info:
        restore_version(Store(tmp_path / "restored"), str(target))
    assert _one_line(info) == expected
    with pytest.raises(StoreError, match=r"nested too deeply"):
        backup_store(store, str(target))
    with pytest.raises(StoreError, match=r"nested too deeply"):
        backup_versions(str(target))
    assert main(["restore", "--from", str(target), "--data-dir", str(tmp_path / "r")]) == 7
    assert _stderr_line(capsys) == f"error: {expected}"


def test_a_backup_json_that_is_not_utf8_is_not_valid_json(tmp_path):
    _, target, _ = _plain_backup(tmp_path)
    _index_path(target).write_bytes(b'{"format": "\xff\xfe"}')
    with pytest.raises(StoreError) as info:
        restore_version(Store(tmp_path / "restored"), str(target))
    assert _one_line(info) == f"{target}: backup.json is not valid JSON"


# -- item 2: restore repairs, it never replaces a version ---------------------------------
def _rewrite_consistently(store: Store, version: str) -> tuple[bytes, bytes]:
    """Give the local `version` other prices and a manifest that matches them (a version
    built elsewhere under the same name); returns (manifest bytes, prices bytes)."""
    folder = store.archive / version
    prices = folder / "prices.parquet"
    manifest_path = folder / "manifest.json"
    other = prices_frame(D, symbols=("ZZZ",))
    for path in (folder, prices, manifest_path):
        path.chmod(0o700 if path.is_dir() else 0o600)
    other.write_parquet(prices)
    data = prices.read_bytes()
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["prices.parquet"].update(sha256=sha256_bytes(data), bytes=len(data))
    manifest_path.write_text(json.dumps(manifest, indent=2))
    assert store.verify(version) == []  # the local version is consistent
    return manifest_path.read_bytes(), data


def test_restore_refuses_to_replace_a_local_version_with_another_manifest(tmp_path, capsys):
    store, target, version = _plain_backup(tmp_path)
    manifest_bytes, prices_bytes = _rewrite_consistently(store, version)
    expected = (f"version {version} exists locally with another manifest; restore into "
                "another data directory or remove that version")
    with pytest.raises(StoreError) as info:
        restore_version(store, str(target))
    assert _one_line(info) == expected
    assert main(["restore", "--from", str(target), "--data-dir", str(store.root)]) == 7
    assert _stderr_line(capsys) == f"error: {expected}"
    folder = store.archive / version
    assert (folder / "manifest.json").read_bytes() == manifest_bytes  # nothing changed
    assert (folder / "prices.parquet").read_bytes() == prices_bytes
    assert store.verify(version) == [] and store.current_version() == version
    assert sorted(p.name for p in store.archive.iterdir()) == [version]


def test_restore_refuses_even_when_the_local_files_are_also_damaged(tmp_path):
    store, target, version = _plain_backup(tmp_path)
    manifest_bytes, _ = _rewrite_consistently(store, version)
    (store.archive / version / "prices.parquet").unlink()
    with pytest.raises(StoreError, match="exists locally with another manifest"):
        restore_version(store, str(target))
    assert not (store.archive / version / "prices.parquet").exists()  # nothing placed
    assert (store.archive / version / "manifest.json").read_bytes() == manifest_bytes


@pytest.mark.parametrize("damage", ["missing", "not JSON", "not a manifest"])
def test_restore_still_repairs_a_missing_or_corrupt_local_manifest(tmp_path, damage):
    store, target, version = _plain_backup(tmp_path)
    manifest_path = store.archive / version / "manifest.json"
    good = manifest_path.read_bytes()
    (store.archive / version).chmod(0o700)
    if damage == "missing":
        manifest_path.unlink()
    else:
        manifest_path.chmod(0o600)
        manifest_path.write_bytes(b"\x00garbage" if damage == "not JSON" else b'{"a": 1}')
    report = restore_version(store, str(target))
    assert report.files_downloaded == ["manifest.json"]
    assert manifest_path.read_bytes() == good and store.verify(version) == []


# -- item 3: errors of the backup's filesystem never show its credentials -----------------
SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
URL = f"s3://AKIAFAKEACCESSKEY:{SECRET}@team-bucket/aurora"
SHOWN = "s3://team-bucket/aurora"


class FakeClientError(Exception):
    """Stands in for a botocore error: not an OSError, and its message quotes the URL."""


class FailingFS:
    """A remote fsspec-like filesystem whose chosen calls fail with FakeClientError."""

    protocol = ("s3", "s3a")

    def __init__(self, failing: set[str], index: bytes | None = None) -> None:
        self.failing = failing
        self.index = index

    def _maybe_fail(self, call: str, path: str) -> None:
        if call in self.failing:
            raise FakeClientError(f'Invalid bucket name "AKIAFAKEACCESSKEY:{SECRET}@'
                                  f'team-bucket" in {call}({path!r})')

    def exists(self, path: str) -> bool:
        self._maybe_fail("exists", path)
        return self.index is not None and path.endswith("backup.json")

    def cat_file(self, path: str) -> bytes:
        self._maybe_fail("cat_file", path)
        if self.index is None:
            raise FileNotFoundError(path)
        return self.index

    def pipe_file(self, path: str, data: bytes) -> None:
        self._maybe_fail("pipe_file", path)


def _use_fs(monkeypatch: pytest.MonkeyPatch, fs: Any) -> None:
    def url_to_fs(url: str, **options: Any) -> tuple[Any, str]:
        return fs, url.split("://", 1)[1]

    monkeypatch.setattr(backup_module.fsspec.core, "url_to_fs", url_to_fs)


def _safe(message: str) -> str:
    assert "\n" not in message and SECRET not in message and "AKIAFAKE" not in message
    return message


@pytest.mark.parametrize("call, action, expected", [
    ("exists", "restore", f"{SHOWN}: cannot reach the backup (FakeClientError)"),
    ("exists", "backup", f"{SHOWN}: cannot reach the backup (FakeClientError)"),
    ("cat_file", "restore", f"{SHOWN}: cannot read backup.json (FakeClientError)"),
    ("pipe_file", "backup", f"{SHOWN}: cannot write blobs/"),
])
def test_filesystem_errors_are_one_line_without_credentials(
        store, tmp_path, monkeypatch, call, action, expected):
    publish(store, "fetch", **{"prices.parquet": prices_frame(D)})
    index = b'{"format": "aurora-backup/1", "versions": {}}' if call == "cat_file" else None
    _use_fs(monkeypatch, FailingFS({call}, index))
    with pytest.raises(StoreError) as info:
        if action == "restore":
            restore_version(Store(tmp_path / "restored"), URL)
        else:
            backup_store(store, URL)
    message = _safe(_one_line(info))
    assert message.startswith(expected) and message.endswith("(FakeClientError)")
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_opening_the_location_never_shows_credentials(monkeypatch):
    def failing(url: str, **options: Any) -> tuple[Any, str]:
        raise FakeClientError(f"cannot open {url} with {options}")

    monkeypatch.setattr(backup_module.fsspec.core, "url_to_fs", failing)
    with pytest.raises(StoreError) as info:
        backup_versions(URL, {"secret": "storage-option-secret"})
    assert _safe(_one_line(info)) == (f"{SHOWN}: cannot open the backup location "
                                      "(FakeClientError)")

    def bad_value(url: str, **options: Any) -> tuple[Any, str]:
        raise ValueError(f"bad endpoint for {url} (secret {options['secret']})\nmore")

    monkeypatch.setattr(backup_module.fsspec.core, "url_to_fs", bad_value)
    with pytest.raises(ConfigError) as info:
        backup_versions(URL, {"secret": "storage-option-secret"})
    message = _safe(_one_line(info))
    assert message.startswith(f"backup URL {SHOWN}: bad endpoint for ")
    assert "storage-option-secret" not in message and "***" in message


def test_an_unknown_protocol_is_still_named(tmp_path):
    with pytest.raises(ConfigError) as info:
        backup_versions("nosuchproto://bucket/x")
    assert _one_line(info) == "backup URL nosuchproto://bucket/x: Protocol not known: nosuchproto"


def test_cli_restore_from_a_failing_filesystem_prints_one_safe_line(
        tmp_path, monkeypatch, capsys):
    _use_fs(monkeypatch, FailingFS({"exists"}))
    assert main(["restore", "--from", URL, "--data-dir", str(tmp_path / "d")]) == 7
    out, err = capsys.readouterr()
    [line] = err.strip().splitlines()
    assert line == f"error: {SHOWN}: cannot reach the backup (FakeClientError)"
    assert SECRET not in out + err


def test_real_s3fs_error_for_credentials_in_the_url_is_one_safe_line(tmp_path, capsys):
    """s3fs refuses `key:secret@bucket` as a bucket name with a botocore error quoting it,
    before any request is sent (anonymous, to a closed local port: nothing leaves here)."""
    pytest.importorskip("s3fs")
    assert fsspec.get_filesystem_class("s3") is not None
    code = main(["restore", "--from", URL, "-o", "anon=true",
                 "-o", "endpoint_url=http://127.0.0.1:9", "--data-dir", str(tmp_path / "d")])
    out, err = capsys.readouterr()
    assert code == 7 and SECRET not in out + err and "Traceback" not in err
    [line] = err.strip().splitlines()
    assert line.startswith(f"error: {SHOWN}: cannot reach the backup (")
