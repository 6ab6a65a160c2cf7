"""The foundation's promise: bad input gives a one-line error, a non-zero exit, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

AURORA = [sys.executable, "-c", "import sys; from aurora.cli.main import main; sys.exit(main())"]


def _run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("APCA_", "AURORA_"))}
    clean.update(env)
    return subprocess.run([*AURORA, *args], cwd=cwd, env=clean, capture_output=True, text=True,
                          timeout=120)


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
            "APCA_API_DATA_URL": "http://127.0.0.1:9"}


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
