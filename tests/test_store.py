import json
import os
import shutil
import stat
from pathlib import Path

import polars as pl
import pytest

from aurora.atomic import atomic_write_parquet
from aurora.errors import StoreError
from aurora.ops.rollback import rollback
from aurora.store import Store, UniverseRecord


def _write(store: Store, stage: str, **frames: pl.DataFrame) -> str:
    with store.transaction(stage, base=store.current_version(), params={"k": 1}) as txn:
        for name, frame in frames.items():
            atomic_write_parquet(txn.path(f"{name}.parquet"), frame)
            txn.describe(f"{name}.parquet", rows=frame.height)
    version = store.current_version()
    assert version is not None
    return version


def test_empty_store(data_dir: Path):
    store = Store(data_dir)
    assert store.current_version() is None
    assert store.file_path("prices.parquet") is None
    assert store.verify() == []


def test_publish_inherits_unchanged_files(data_dir: Path):
    store = Store(data_dir)
    v1 = _write(store, "fetch", prices=pl.DataFrame({"a": [1, 2]}))
    v2 = _write(store, "build", features=pl.DataFrame({"b": [3]}))
    assert v1 != v2 and store.versions() == [v1, v2]
    manifest = store.manifest()
    assert manifest.parent == v1 and manifest.stage == "build"
    assert set(manifest.files) == {"prices.parquet", "features.parquet"}
    assert manifest.files["prices.parquet"].meta("rows") == 2
    assert manifest.files["prices.parquet"].written_by == "fetch"
    assert pl.read_parquet(data_dir / "latest" / "prices.parquet")["a"].to_list() == [1, 2]
    assert store.verify() == []


def test_failed_transaction_leaves_latest_untouched(data_dir: Path):
    store = Store(data_dir)
    v1 = _write(store, "fetch", prices=pl.DataFrame({"a": [1]}))
    with pytest.raises(RuntimeError), \
            store.transaction("fetch", base=store.current_version()) as txn:
        atomic_write_parquet(txn.path("prices.parquet"), pl.DataFrame({"a": [9]}))
        raise RuntimeError("boom")
    assert store.current_version() == v1
    assert store.versions() == [v1]
    assert not [p for p in (data_dir / "archive").iterdir() if p.name.startswith(".")]


def test_checksum_mismatch_is_reported(data_dir: Path):
    store = Store(data_dir)
    _write(store, "fetch", prices=pl.DataFrame({"a": [1]}))
    (data_dir / "latest" / "prices.parquet").write_bytes(b"garbage")
    assert store.verify() == [
        f"prices.parquet: checksum mismatch in {store.current_version()} (file changed or corrupt)"
    ]


def test_file_names_cannot_escape_the_version(data_dir: Path):
    store = Store(data_dir)
    with pytest.raises(StoreError), store.transaction("x", base=store.current_version()) as txn:
        txn.path("../evil")


def test_lock_is_exclusive(data_dir: Path):
    store = Store(data_dir)
    with store.lock(), pytest.raises(StoreError, match="locked by another"), Store(data_dir).lock():
        pass


def test_leftover_staging_is_cleaned(data_dir: Path):
    store = Store(data_dir)
    _write(store, "fetch", prices=pl.DataFrame({"a": [1]}))
    junk = data_dir / "archive" / ".staging-dead"
    junk.mkdir()
    (junk / "prices.parquet").write_bytes(b"partial")
    _write(store, "build", features=pl.DataFrame({"b": [1]}))
    assert not junk.exists()
    assert os.path.islink(data_dir / "latest")


def test_a_transaction_publishes_only_over_the_version_it_read(data_dir: Path):
    store = Store(data_dir)
    read = _write(store, "fetch", prices=pl.DataFrame({"a": [1]}))
    meanwhile = _write(store, "import", sectors=pl.DataFrame({"s": ["x"]}))
    with pytest.raises(StoreError, match=f"published version {meanwhile} while this build "
                       f"worked from {read}"), \
            store.transaction("build", base=read) as txn:
        atomic_write_parquet(txn.path("features.parquet"), pl.DataFrame({"f": [1.0]}))
    assert store.current_version() == meanwhile and len(store.versions()) == 2


def test_lineage_origin_and_universe(data_dir: Path):
    store = Store(data_dir)
    universe = UniverseRecord(symbols=("AAA", "BBB"), source="/lists/mine.txt")
    with store.transaction("fetch", base=None, universe=universe,
                           params={"adjustment": "raw"}) as txn:
        atomic_write_parquet(txn.path("prices.parquet"), pl.DataFrame({"a": [1]}))
    fetched = store.current_version()
    built = _write(store, "build", features=pl.DataFrame({"b": [1]}))
    assert [m.version for m in store.lineage()] == [built, fetched]
    assert store.origin("prices.parquet").version == fetched  # inherited unchanged by build
    assert store.origin("prices.parquet").params["adjustment"] == "raw"
    assert store.origin("features.parquet").version == built
    assert store.origin("missing.parquet") is None
    assert store.universe() == universe and store.manifest(built).universe == universe
    # a pruned parent ends the lineage instead of failing it
    shutil.rmtree(store.archive / fetched)
    assert [m.version for m in store.lineage()] == [built]


def test_a_malformed_manifest_is_named(data_dir: Path):
    store = Store(data_dir)
    version = _write(store, "fetch", prices=pl.DataFrame({"a": [1]}))
    path = store.archive / version / "manifest.json"
    path.write_text('{"version": "v", "stage": "fetch", "files": {}}')
    with pytest.raises(StoreError, match=rf"{path}: manifest field created_at: Field required"):
        store.manifest()


def test_a_changed_inherited_file_is_never_re_certified(data_dir: Path):
    store = Store(data_dir)
    first = _write(store, "fetch", prices=pl.DataFrame({"a": [1.0, 2.0]}))
    path = store.archive / first / "prices.parquet"
    tampered = data_dir / "tampered.parquet"
    pl.DataFrame({"a": [1.0, 2.5]}).write_parquet(tampered)  # one value changed, file replaced
    os.replace(tampered, path)
    with pytest.raises(StoreError, match=rf"prices.parquet of version {first} does not match "
                       r"its manifest .*nothing was published"):
        _write(store, "build", features=pl.DataFrame({"b": [1]}))
    assert store.current_version() == first and store.versions() == [first]
    with pytest.raises(StoreError, match=r"prices.parquet of version .* does not match"):
        store.verified_path("prices.parquet")
    assert store.verified_path("features.parquet") is None


def test_unsafe_names_in_a_manifest_are_refused(data_dir: Path):
    store = Store(data_dir)
    version = _write(store, "fetch", prices=pl.DataFrame({"a": [1]}))
    path = store.archive / version / "manifest.json"
    for field, bad in (("files", {"../../tmp/x": {"sha256": "0", "bytes": 1}}),
                       ("parent", "../../v"), ("version", "a/b")):
        raw = json.loads(path.read_text())
        path.write_text(json.dumps({**raw, field: bad}))
        with pytest.raises(StoreError, match=r"unsafe (file|version) name"):
            store.manifest(version)
        path.write_text(json.dumps(raw))


def test_an_in_place_write_damages_one_version_and_rollback_repairs_it(data_dir: Path):
    store = Store(data_dir)
    first = _write(store, "fetch", prices=pl.DataFrame({"a": [1.0, 2.0]}))
    second = _write(store, "build", features=pl.DataFrame({"b": [1]}))
    third = _write(store, "predict", predictions=pl.DataFrame({"c": [1]}))
    files = {v: store.archive / v / "prices.parquet" for v in (first, second, third)}
    for path in files.values():
        assert stat.S_IMODE(path.stat().st_mode) & 0o222 == 0  # published files are read-only
    # the older versions share one inode per unchanged file; the latest has its own
    assert os.path.samefile(files[first], files[second])
    assert not os.path.samefile(files[second], files[third])
    os.truncate(data_dir / "latest" / "prices.parquet", 10)  # in place, through latest
    assert store.verify(third) and not store.verify(second) and not store.verify(first)
    with pytest.raises(StoreError, match="does not match its manifest"):
        _write(store, "build", features=pl.DataFrame({"b": [2]}))
    rollback(store)  # to the parent, which still verifies
    assert store.current_version() == second and store.verify() == []


def test_after_a_rollback_latest_shares_no_inode(data_dir: Path):
    store = Store(data_dir)
    _write(store, "fetch", prices=pl.DataFrame({"a": [1.0]}))
    second = _write(store, "build", features=pl.DataFrame({"b": [1]}))
    _write(store, "predict", predictions=pl.DataFrame({"c": [1]}))
    shared = store.archive / second / "prices.parquet"
    assert shared.stat().st_nlink == 2  # with the first version, by disk reclamation
    rollback(store)
    assert store.current_version() == second and shared.stat().st_nlink == 1
    assert store.verify() == [] and store.verify(store.versions()[0]) == []


def test_older_versions_share_one_inode_whatever_stage_rewrote_what(data_dir: Path):
    """fetch -> build -> predict cycles: every content has at most two inodes in the
    archive (the latest version's own copy and the one older versions share)."""
    store = Store(data_dir)
    for day in range(3):
        _write(store, "fetch", prices=pl.DataFrame({"a": [float(day)]}),
               sectors=pl.DataFrame({"s": ["x"]}))
        _write(store, "build", features=pl.DataFrame({"b": [day]}))
        _write(store, "predict", predictions=pl.DataFrame({"c": [day]}))
    inodes: dict[str, set[int]] = {}
    for version in store.versions():
        for name, entry in store.manifest(version).files.items():
            inodes.setdefault(entry.sha256, set()).add(
                (store.archive / version / name).stat().st_ino)
    assert max(len(found) for found in inodes.values()) <= 2


def test_a_deeply_nested_or_newline_named_manifest_is_one_line(data_dir: Path):
    store = Store(data_dir)
    version = _write(store, "fetch", prices=pl.DataFrame({"a": [1]}))
    path = store.archive / version / "manifest.json"
    raw = json.loads(path.read_text())
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(StoreError, match="nested too deeply"):
        store.manifest(version)
    path.write_text(json.dumps({**raw, "files": {"evil\n": {"sha256": "0", "bytes": 1}}}))
    with pytest.raises(StoreError, match="unsafe file name"):
        store.manifest(version)
