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


def test_safe_argv_masks_every_secret_bearing_option_whoever_defines_it():
    argv = ["emulator", "--secret-key", "S1-plugin", "--key-id=K1-plugin",
            "--api-token", "T1-unknown", "--password=P1-unknown",
            "--webhook-url", "https://hooks.example.com/services/T0/B0/TOK1-path",
            "--webhook-url=https://hooks.example.com/x/TOK2-path",
            "-o", "passphrase=S2", "-o", "endpoint_url=http://user:S3@127.0.0.1:9000/p",
            "--storage-option=connection_string=AccountName=a;AccountKey=S4",
            "-oauth=S5", "-o", "webhook=https://hooks.example.com/T/TOK3-path",
            "--data-dir", "/srv/data", "--keep-scratch", "--to", "s3://bucket/prefix"]
    masked = safe_argv(argv, ())
    assert masked == [
        "emulator", "--secret-key", "***", "--key-id=***", "--api-token", "***",
        "--password=***", "--webhook-url", "https://hooks.example.com/***",
        "--webhook-url=https://hooks.example.com/***", "-o", "passphrase=***", "-o",
        "endpoint_url=http://127.0.0.1:9000/p", "--storage-option=connection_string=***",
        "-oauth=***", "-o", "webhook=https://hooks.example.com/***",
        "--data-dir", "/srv/data", "--keep-scratch", "--to", "s3://bucket/prefix"]
    for secret in ("S1-", "K1-", "T1-", "P1-", "TOK1", "TOK2", "TOK3", "S2", "S3", "S4", "S5"):
        assert secret not in " ".join(masked)


def test_an_audited_command_never_writes_option_secrets(data_dir, tmp_path, capsys):
    store = Store(data_dir)
    publish(store, "fetch", **{"prices.parquet": prices_frame(dt.date(2024, 3, 15))})
    secrets = ["PLANTED-S1", "PLANTED-S2", "PLANTED-S3", "PLANTED-S4"]
    argv = ["backup", "--to", str(tmp_path / "bk"), "--data-dir", str(data_dir),
            "-o", f"endpoint_url=http://user:{secrets[0]}@127.0.0.1:9",
            "-o", f"passphrase={secrets[1]}",
            f"--storage-option=connection_string=AccountName=a;AccountKey={secrets[2]}",
            "--storage-option", f"secret={secrets[3]}"]
    assert main(argv) == 0  # a local backup ignores these options; the audit sees them
    capsys.readouterr()
    [record] = AuditLog(data_dir).records()
    assert record["command"] == "backup" and "-o" in record["argv"]
    everything = b"".join(p.read_bytes() for p in data_dir.rglob("*") if p.is_file())
    for secret in secrets:
        assert secret.encode() not in everything
