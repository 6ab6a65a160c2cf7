import datetime as dt
import json
import os
import stat

from ops_helpers import prices_frame, publish

from aurora.cli.main import main
from aurora.ops.audit import AuditLog, safe_argv
from aurora.store import Store


def test_append_only_and_owner_only(data_dir):
    log = AuditLog(data_dir)
    old = os.umask(0)
    try:
        log.append({"n": 1})
        first = log.path.read_bytes()
        log.append({"n": 2})
    finally:
        os.umask(old)
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600
    assert log.path.read_bytes().startswith(first)
    assert [r["n"] for r in log.records()] == [1, 2]


def test_safe_argv_masks_secrets():
    argv = ["backup", "--to", "s3://user:pw@bucket/x?sig=abc", "-o", "secret=hunter22",
            "-o", "endpoint_url=http://127.0.0.1:9000", "--note=planted-XYZW"]
    assert safe_argv(argv, ("planted-XYZW",)) == [
        "backup", "--to", "s3://bucket/x", "-o", "secret=***", "-o",
        "endpoint_url=http://127.0.0.1:9000", "--note=***"]


def test_every_cli_command_is_audited(data_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = Store(data_dir)
    v1 = publish(store, "fetch", **{"prices.parquet": prices_frame(dt.date(2024, 3, 15))})
    backup = tmp_path / "bk"
    assert main(["backup", "--to", str(backup), "--data-dir", str(data_dir)]) == 0
    assert main(["status", "--data-dir", str(data_dir)]) == 0
    other = tmp_path / "other"
    other.mkdir()
    assert main(["restore", "--from", str(backup), "--data-dir", str(other)]) == 0
    assert main(["restore", "--from", str(tmp_path / "none"), "--data-dir", str(data_dir)]) == 7
    assert main(["--help"]) == 0  # not a command: not audited
    capsys.readouterr()
    records = AuditLog(data_dir).records()
    assert [(r["command"], r["outcome"], r["exit_code"]) for r in records] == [
        ("backup", "ok", 0), ("status", "ok", 0), ("restore", "error", 7)]
    first = records[0]
    assert first["user"] and first["uid"] == os.getuid() and first["runs"]
    assert first["read"] == [{"path": f"archive/{v1}/manifest.json",
                              "sha256": first["read"][0]["sha256"]}]
    assert "no backup found" in records[2]["error"]
    [restored] = AuditLog(other).records()
    sha = store.manifest(v1).files["prices.parquet"].sha256
    assert restored["written"] == [{"path": f"archive/{v1}/prices.parquet", "sha256": sha,
                                    "bytes": store.manifest(v1).files["prices.parquet"]
                                    .bytes}]
    assert restored["version_before"] is None and restored["version_after"] == v1
    line = (data_dir / "audit" / "audit.jsonl").read_text().splitlines()[0]
    assert json.loads(line)["time"] < json.loads(line)["ended_at"]


def test_input_files_are_hashed(data_dir, tmp_path, capsys):
    config = tmp_path / "aurora.toml"
    config.write_text(f'data_dir = "{data_dir}"\n[ops]\nkeep_versions = 3\n')
    assert main(["prune", "--config", str(config)]) == 0
    capsys.readouterr()
    [record] = AuditLog(data_dir).records()
    assert record["read"][0]["path"] == str(config) and len(record["read"][0]["sha256"]) == 64


def test_stage_commands_without_a_run_context_get_a_history_row(data_dir, capsys):
    from aurora.ops.history import History

    assert main(["fetch", "--data-dir", str(data_dir), "--no-progress"]) == 3  # no credentials
    capsys.readouterr()
    [run] = History(data_dir).recent_runs()
    assert run.command == "fetch" and not run.success and run.exit_code == 3
    assert "APCA_API_SECRET_KEY" in (run.error or "")
    [record] = AuditLog(data_dir).records()  # exactly one audit line for the command
    assert record["runs"] == [run.id] and record["argv"][0] == "fetch"
    assert {a.rule for a in History(data_dir).alerts()} >= {"failed_run"}


def test_safe_argv_masks_attached_storage_options():
    argv = ["backup", "--storage-option=secret=TOPSECRET99", "-osecret=ALSOSECRET",
            "--storage-option", "key=AKIA1234", "--data-dir=/srv/data"]
    masked = safe_argv(argv, ())
    assert masked == ["backup", "--storage-option=secret=***", "-osecret=***",
                      "--storage-option", "key=***", "--data-dir=/srv/data"]
    assert not any(s in " ".join(masked) for s in ("TOPSECRET99", "ALSOSECRET", "AKIA1234"))
