"""The foundation's promise: bad input gives a one-line error, a non-zero exit, no traceback."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from aurora.atomic import atomic_write_parquet
from aurora.store import Store, UniverseRecord

AURORA = [sys.executable, "-c", "import sys; from aurora.cli.main import main; sys.exit(main())"]


def _run(args: list[str], cwd: Path, *, max_file_bytes: int | None = None,
         **env: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a subprocess; `max_file_bytes` caps every file it writes (RLIMIT_FSIZE: a
    larger write fails with EFBIG, the way a full disk fails with ENOSPC)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("APCA_", "AURORA_"))}
    clean.update(env)

    def limit() -> None:
        if max_file_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    return subprocess.run([*AURORA, *args], cwd=cwd, env=clean, capture_output=True, text=True,
                          timeout=120, preexec_fn=limit)


def _assert_one_line_error(proc: subprocess.CompletedProcess[str], needle: str, code: int):
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    assert needle in errors[0]


@pytest.fixture()
def creds() -> dict[str, str]:
    # Port 9 on loopback: nothing listens, and none of these cases should get that far.
    return {"APCA_API_KEY_ID": "AKTEST", "APCA_API_SECRET_KEY": "never-shown-42",
            "APCA_API_DATA_URL": "http://127.0.0.1:9", "APCA_API_BASE_URL": "http://127.0.0.1:9"}


def test_bad_universe_file_names_file_and_line(tmp_path: Path, creds):
    universe = tmp_path / "d" / "universe" / "u.txt"
    universe.parent.mkdir(parents=True)
    universe.write_text("AAPL\nMSFT\nAAPL\n")
    proc = _run(["fetch", "--data-dir", str(tmp_path / "d"), "--universe", str(universe)],
                tmp_path, **creds)
    _assert_one_line_error(proc, f"{universe}:3: duplicate symbol 'AAPL'", 2)
    assert not (tmp_path / "d" / "latest").exists()


def test_unusable_universe_path_is_named(tmp_path: Path, creds):
    (tmp_path / "lists").mkdir()
    for path, problem in ((tmp_path / "none.txt", "universe file not found"),
                          (tmp_path / "lists", "is a directory, not a universe file")):
        proc = _run(["fetch", "--data-dir", str(tmp_path / "d"), "--universe", str(path)],
                    tmp_path, **creds)
        _assert_one_line_error(proc, f"{path}: {problem}", 2)


def test_bad_config_value_names_setting(tmp_path: Path, creds):
    (tmp_path / "aurora.toml").write_text("[fetch]\nrate_limit_per_minute = -1\n")
    proc = _run(["fetch", "--data-dir", str(tmp_path / "d")], tmp_path, **creds)
    _assert_one_line_error(proc, "aurora.toml: fetch.rate_limit_per_minute", 2)


def test_bad_environment_value_names_variable(tmp_path: Path, creds):
    proc = _run(["fetch", "--data-dir", str(tmp_path / "d")], tmp_path, **creds,
                AURORA_FETCH__BATCH_SIZE="many")
    _assert_one_line_error(proc, "environment variable AURORA_FETCH__BATCH_SIZE", 2)


def test_missing_credentials_name_the_variables(tmp_path: Path):
    proc = _run(["fetch", "--data-dir", str(tmp_path / "d")], tmp_path)
    _assert_one_line_error(proc, "APCA_API_KEY_ID and APCA_API_SECRET_KEY", 3)


def test_stage_errors_are_one_line(tmp_path: Path):
    proc = _run(["build", "--data-dir", str(tmp_path / "d")], tmp_path)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr


def test_usage_error_is_not_a_traceback(tmp_path: Path):
    proc = _run(["fetch", "--no-such-flag"], tmp_path)
    assert proc.returncode == 2
    assert "No such option" in proc.stderr and "Traceback" not in proc.stderr


def test_unusable_config_file_is_one_line(tmp_path: Path):
    (tmp_path / "binary.toml").write_bytes(b"\xba\xff\x00\x13 not text")
    (tmp_path / "confdir").mkdir()
    for config, problem in (("binary.toml", "binary.toml: not a TOML text file (not UTF-8"),
                            ("confdir", "confdir: is a directory, not a configuration file")):
        proc = _run(["status", "--data-dir", str(tmp_path / "d"), "--config", config], tmp_path)
        _assert_one_line_error(proc, problem, 2)


@pytest.mark.parametrize(("name", "needle"), [
    ("AURORA_DATA_DIR", "environment variable AURORA_DATA_DIR: data_dir: is empty"),
    ("AURORA_UNIVERSE", "environment variable AURORA_UNIVERSE: universe: is empty"),
    ("AURORA_CONFIG", "environment variable AURORA_CONFIG is empty"),
])
def test_an_empty_path_variable_is_an_error(tmp_path: Path, name, needle):
    proc = _run(["build"], tmp_path, **{name: ""})
    _assert_one_line_error(proc, needle, 2)
    assert list(tmp_path.iterdir()) == []  # the working directory did not become a store


def test_an_unusable_data_directory_is_one_line(tmp_path: Path):
    afile = tmp_path / "afile"
    afile.write_text("a file, not a directory\n")
    cases = [(["build"], afile), (["status"], afile), (["build"], afile / "sub"),
             (["import", "sector-map", str(afile)], afile / "sub")]
    if Path("/proc/self").is_dir():
        cases.append((["build"], Path("/proc/aurora-data")))
    for command, data_dir in cases:
        proc = _run([*command, "--data-dir", str(data_dir)], tmp_path)
        _assert_one_line_error(proc, str(afile if data_dir.parent == afile else data_dir), 7)


def test_a_write_the_disk_cannot_take_is_one_line(tmp_path: Path):
    sectors = tmp_path / "sectors.csv"
    rows = (f"S{i:05d},{hashlib.sha256(str(i).encode()).hexdigest()}\n" for i in range(20_000))
    sectors.write_text("symbol,sector\n" + "".join(rows))  # ~700 KB of Parquet
    data = tmp_path / "d"
    proc = _run(["import", "sector-map", str(sectors), "--data-dir", str(data)], tmp_path,
                max_file_bytes=48 * 1024)
    _assert_one_line_error(proc, "file too large for this file system or process limit "
                           f"while writing {data}/archive/.staging-", 7)
    assert "sector_map.parquet" in proc.stderr
    assert not (data / "latest").exists()


def test_a_non_ascii_secret_is_one_line_and_never_shown(tmp_path: Path, creds):
    creds["APCA_API_SECRET_KEY"] = "never-shown-\u00e9\u00df-42"
    proc = _run(["fetch", "--data-dir", str(tmp_path / "d"), "--no-progress"], tmp_path,
                **creds)
    _assert_one_line_error(proc, "APCA_API_SECRET_KEY", 3)
    assert "\u00e9" not in proc.stderr + proc.stdout and "never-shown" not in proc.stderr


def _store_with_prices(data: Path, prices: pl.DataFrame) -> str:
    store = Store(data)
    with store.transaction("fetch", base=None,
                           universe=UniverseRecord(symbols=("AAA",), source="test")) as txn:
        atomic_write_parquet(txn.path("prices.parquet"), prices)
    version = store.current_version()
    assert version is not None
    return version


def test_a_parquet_of_another_schema_behind_its_manifest_is_one_line(tmp_path: Path):
    day = dt.date(2024, 1, 2)
    prices = pl.DataFrame({"date": [day], "symbol": ["AAA"], "open": [1.0], "high": [1.0],
                           "low": [1.0], "close": ["1.0"], "volume": [1.0]})
    version = _store_with_prices(tmp_path / "d", prices)
    proc = _run(["build", "--data-dir", str(tmp_path / "d"), "--no-progress"], tmp_path)
    _assert_one_line_error(proc, f"prices.parquet of version {version}: column close has "
                           "dtype String, expected Float64", 5)


@pytest.mark.parametrize("command", ["status", "rollback", "build", "validate"])
def test_a_manifest_of_the_wrong_shape_is_one_line(tmp_path: Path, command):
    """Every command names the manifest and field; `status` shows it and succeeds."""
    day = dt.date(2024, 1, 2)
    prices = pl.DataFrame({"date": [day], "symbol": ["AAA"], "open": [1.0], "high": [1.0],
                           "low": [1.0], "close": [1.0], "volume": [1.0]})
    version = _store_with_prices(tmp_path / "d", prices)
    manifest = tmp_path / "d" / "archive" / version / "manifest.json"
    manifest.chmod(0o600)
    manifest.write_text(json.dumps({"version": version, "created_at": "2024-01-02T00:00:00Z",
                                    "stage": "fetch", "params": {"universe": ["AAA"]},
                                    "files": ["prices.parquet"]}))
    proc = _run([command, "--data-dir", str(tmp_path / "d")], tmp_path)
    if command == "status":
        assert proc.returncode == 0 and "Traceback" not in proc.stderr + proc.stdout
        assert f"{manifest}: manifest field files" in proc.stdout
    else:
        _assert_one_line_error(proc, f"{manifest}: manifest field files", 7)


def test_a_bad_deadline_is_refused_when_the_configuration_loads(tmp_path: Path):
    (tmp_path / "aurora.toml").write_text('[ops]\ndeadline_timezone = "America/Chicgo"\n')
    proc = _run(["status", "--data-dir", str(tmp_path / "d")], tmp_path)
    _assert_one_line_error(proc, "aurora.toml: ops.deadline_timezone: unknown time zone", 2)
