"""aurora rollback: latest moves back to a verified version, or stays put and says why."""

from __future__ import annotations

import datetime as dt

import pytest
from ops_helpers import prices_frame, publish

from aurora.cli.main import main
from aurora.config import AuroraConfig
from aurora.errors import StoreError
from aurora.ops.audit import AuditLog
from aurora.ops.history import History
from aurora.ops.rollback import rollback
from aurora.ops.status import collect_status
from aurora.store import Store


def _three_versions(store: Store) -> list[str]:
    return [publish(store, "fetch", **{"prices.parquet": prices_frame(dt.date(2026, 11, d))})
            for d in (18, 19, 20)]


def test_rollback_to_the_parent_then_forward_again(store):
    _v1, v2, v3 = _three_versions(store)
    report = rollback(store)
    assert (report.previous, report.current, report.files_verified) == (v3, v2, 1)
    assert store.current_version() == v2
    assert rollback(store, v3).current == v3
    assert store.current_version() == v3


def test_a_corrupt_or_unknown_target_leaves_latest_untouched(store):
    v1, _v2, v3 = _three_versions(store)
    (store.archive / v1 / "prices.parquet").write_bytes(b"corrupted")
    with pytest.raises(StoreError, match=rf"{v1} fails verification.*prices.parquet"):
        rollback(store, v1)
    with pytest.raises(StoreError, match="20990101T000000000000Z-fetch is not in"):
        rollback(store, "20990101T000000000000Z-fetch")
    assert store.current_version() == v3


def test_nothing_to_roll_back(data_dir):
    store = Store(data_dir)
    with pytest.raises(StoreError, match="empty"):
        rollback(store)
    v1 = publish(store, "fetch", **{"prices.parquet": prices_frame(dt.date(2026, 11, 20))})
    with pytest.raises(StoreError, match=f"{v1} is the first one"):
        rollback(store)


def test_cli_rollback_is_recorded_and_status_lists_the_newer_version(data_dir, capsys):
    store = Store(data_dir)
    _v1, v2, v3 = _three_versions(store)
    assert main(["rollback", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert f"latest: {v3} -> {v2}" in out
    assert History(store.root).recent_runs(1)[0].command == "rollback"
    [audit] = [r for r in AuditLog(data_dir).records() if r["command"] == "rollback"]
    assert (audit["version_before"], audit["version_after"]) == (v3, v2)
    report = collect_status(store, AuroraConfig(data_dir=data_dir))
    assert report.latest_version == v2 and report.newer_than_latest == [v3]
    assert main(["status", "--data-dir", str(data_dir)]) == 0
    assert "newer than latest" in capsys.readouterr().out
    assert main(["rollback", "--to", "nope", "--data-dir", str(data_dir)]) == 7
    assert "version nope is not in" in capsys.readouterr().err
    assert store.current_version() == v2
