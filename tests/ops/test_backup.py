import datetime as dt
import json

import polars as pl
import pytest
from ops_helpers import prices_frame, publish, set_created_at

from aurora.errors import ConfigError, CredentialsError, StoreError
from aurora.ops.backup import (
    backup_store,
    backup_versions,
    parse_storage_options,
    restore_version,
)
from aurora.ops.retention import prune
from aurora.store import Store

D = dt.date(2024, 3, 15)


def _two_versions(store: Store) -> tuple[str, str]:
    v1 = publish(store, "fetch", **{"prices.parquet": prices_frame(D)})
    v2 = publish(store, "build", **{"features.parquet": prices_frame(D, ("X",)),
                                    "predictions.json": {"top": ["AAA"]}})
    return v1, v2


def test_backup_is_content_addressed_and_incremental(store, tmp_path):
    v1, v2 = _two_versions(store)
    target = tmp_path / "backup"
    report = backup_store(store, str(target))
    assert report.versions_added == [v1, v2] and report.versions_total == 2
    # prices.parquet is shared by both versions: stored once.
    assert report.blobs_uploaded == 3 and report.blobs_reused == 1
    index = json.loads((target / "backup.json").read_text())
    assert index["latest"] == v2 and index["encrypted"] is False
    for version in (v1, v2):
        for name, meta in index["versions"][version]["files"].items():
            blob = target / "blobs" / meta["sha256"]
            assert blob.read_bytes() == (store.archive / version / name).read_bytes()
        assert (target / "versions" / version / "manifest.json").read_bytes() == (
            store.archive / version / "manifest.json").read_bytes()
    v3 = publish(store, "predict", **{"predictions.json": {"top": ["BBB"]}})
    again = backup_store(store, str(target))
    assert again.versions_added == [v3] and again.blobs_uploaded == 1
    assert backup_versions(str(target)) == ([v1, v2, v3], v3)


def test_restore_into_an_empty_store(store, tmp_path):
    v1, v2 = _two_versions(store)
    backup_store(store, str(tmp_path / "b"))
    other = Store(tmp_path / "other")
    report = restore_version(other, str(tmp_path / "b"))
    assert report.version == v2 and other.current_version() == v2 and other.verify() == []
    assert sorted(report.files_downloaded) == ["features.parquet", "predictions.json",
                                               "prices.parquet"]
    assert pl.read_parquet(other.latest / "prices.parquet").equals(
        pl.read_parquet(store.latest / "prices.parquet"))
    older = restore_version(other, str(tmp_path / "b"), version=v1)
    assert other.current_version() == v1 and older.files_verified == 1
    with pytest.raises(StoreError, match="not in the backup"):
        restore_version(other, str(tmp_path / "b"), version="nope")


def test_corrupt_latest_is_detected_and_repaired(store, tmp_path):
    _, v2 = _two_versions(store)
    backup_store(store, str(tmp_path / "b"))
    victim = store.archive / v2 / "features.parquet"
    good = victim.read_bytes()
    victim.write_bytes(good[:-10] + b"0123456789")
    assert store.verify() == [f"features.parquet: checksum mismatch in {v2} (file changed or "
                              "corrupt)"]
    with pytest.raises(StoreError, match="corrupt"):
        backup_store(store, str(tmp_path / "b2"))  # never back up a corrupt latest
    report = restore_version(store, str(tmp_path / "b"))
    assert report.files_downloaded == ["features.parquet"]
    assert store.verify() == [] and victim.read_bytes() == good
    assert store.current_version() == v2


def test_corrupt_backup_blob_is_refused_and_store_untouched(store, tmp_path):
    _, v2 = _two_versions(store)
    backup_store(store, str(tmp_path / "b"))
    index = json.loads((tmp_path / "b" / "backup.json").read_text())
    sha = index["versions"][v2]["files"]["predictions.json"]["sha256"]
    (tmp_path / "b" / "blobs" / sha).write_bytes(b'{"top": ["EVIL"]}')
    other = Store(tmp_path / "other")
    with pytest.raises(StoreError, match=r"predictions.json .* is corrupt"):
        restore_version(other, str(tmp_path / "b"))
    assert other.current_version() is None and other.versions() == []
    assert not any(p.name.startswith(".staging") for p in other.archive.iterdir())


def test_partial_blob_from_a_killed_backup_is_rewritten(store, tmp_path):
    v1 = publish(store, "fetch", **{"prices.parquet": prices_frame(D)})
    sha = store.manifest(v1).files["prices.parquet"].sha256
    (tmp_path / "b" / "blobs").mkdir(parents=True)
    (tmp_path / "b" / "blobs" / sha).write_bytes(b"partial")  # no backup.json references it
    backup_store(store, str(tmp_path / "b"))
    assert restore_version(Store(tmp_path / "o"), str(tmp_path / "b")).files_verified == 1


def test_encrypted_backup(store, tmp_path):
    _, v2 = _two_versions(store)
    url = str(tmp_path / "enc")
    report = backup_store(store, url, key="correct horse battery")
    assert report.encrypted
    index_text = (tmp_path / "enc" / "backup.json").read_text()
    assert "correct horse" not in index_text and json.loads(index_text)["encrypted"] is True
    plain = (store.archive / v2 / "predictions.json").read_bytes()
    sha = store.manifest(v2).files["predictions.json"].sha256
    blob = (tmp_path / "enc" / "blobs" / sha).read_bytes()
    assert plain not in blob and blob.startswith(b"AURORA-AESGCM-1")
    other = Store(tmp_path / "other")
    with pytest.raises(CredentialsError, match="encrypted: set AURORA_BACKUP_KEY"):
        restore_version(other, url)
    with pytest.raises(CredentialsError, match="does not match"):
        restore_version(other, url, key="wrong")
    with pytest.raises(CredentialsError, match="does not match"):
        backup_store(store, url, key="wrong")
    restore_version(other, url, key="correct horse battery")
    assert other.verify() == [] and (other.latest / "predictions.json").read_bytes() == plain
    with pytest.raises(ConfigError, match="unencrypted backup"):
        backup_store(store, str(tmp_path / "plain"))  # creates a plain backup ...
        backup_store(store, str(tmp_path / "plain"), key="k")  # ... which stays plain


def test_backup_errors(store, tmp_path):
    with pytest.raises(StoreError, match="nothing to back up"):
        backup_store(store, str(tmp_path / "b"))
    with pytest.raises(StoreError, match="no backup found"):
        restore_version(store, str(tmp_path / "missing"))
    assert parse_storage_options(["endpoint_url=http://x:1", "anon=true", "n=3"]) == {
        "endpoint_url": "http://x:1", "anon": True, "n": 3}
    with pytest.raises(ConfigError, match="#2: expected KEY=VALUE") as info:
        parse_storage_options(["a=b", "secretvalue"])
    assert "secretvalue" not in str(info.value)


def test_prune_keeps_last_n_and_latest(store):
    versions = [publish(store, "fetch", **{"prices.parquet": prices_frame(D, days=i + 1)})
                for i in range(5)]
    store.point_latest_to(versions[0])
    dry = prune(store, keep_versions=2, dry_run=True)
    assert dry.removed == versions[1:3] and store.versions() == versions
    report = prune(store, keep_versions=2)
    assert report.removed == versions[1:3]
    assert store.versions() == [versions[0], *versions[3:]]
    assert store.current_version() == versions[0] and store.verify() == []
    assert not [p for p in store.archive.iterdir() if p.name.startswith(".")]


def test_prune_by_days(store):
    versions = [publish(store, "fetch", **{"prices.parquet": prices_frame(D, days=i + 1)})
                for i in range(3)]
    now = dt.datetime(2026, 1, 10, tzinfo=dt.UTC)
    for version, day in zip(versions, (1, 5, 9), strict=True):
        set_created_at(store, version, dt.datetime(2026, 1, day, tzinfo=dt.UTC))
    report = prune(store, keep_versions=1, keep_days=6, now=now)
    assert report.removed == [versions[0]] and store.versions() == versions[1:]
    with pytest.raises(ConfigError):
        prune(store, keep_versions=0)


def test_restore_holds_the_store_lock(store, tmp_path):
    _two_versions(store)
    backup_store(store, str(tmp_path / "b"))
    with store.lock(), pytest.raises(StoreError, match="locked by another aurora process"):
        restore_version(Store(store.root), str(tmp_path / "b"))
