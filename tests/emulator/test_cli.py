"""`aurora emulator` as a real subprocess: one URL line on stdout, serves, stops on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from aurora.errors import ConfigError, CredentialsError

AURORA = Path(sys.executable).with_name("aurora")


def _start(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("APCA_", "AURORA_"))}
    return subprocess.Popen([str(AURORA), "emulator", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=clean | (env or {}))


def _first_line(proc: subprocess.Popen) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=10)
        pytest.fail(f"no URL line; stderr: {proc.stderr.read() if proc.stderr else ''}")
    return line.rstrip("\n")


def _stop(proc: subprocess.Popen) -> tuple[str, str]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    return out, err


@pytest.mark.skipif(not AURORA.exists(), reason="console script not installed in this venv")
def test_cli_serves_the_synthetic_market(tmp_path, tls_context):
    universe = tmp_path / "universe.txt"
    universe.write_text("AAPL\nMSFT\n")
    proc = _start(["--port", "0", "--key-id", "K", "--secret-key", "S-very-secret",
                   "--universe", str(universe), "--start", "2023-01-01", "--end", "2023-03-31"])
    try:
        url = _first_line(proc)
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
        resp = httpx.get(url + "/v2/stocks/bars", verify=tls_context,
                         headers={"APCA-API-KEY-ID": "K", "APCA-API-SECRET-KEY": "S-very-secret"},
                         params={"symbols": "AAPL,MSFT", "timeframe": "1Day",
                                 "start": "2023-01-01", "end": "2023-01-31"})
        assert resp.status_code == 200
        assert [len(v) for v in resp.json()["bars"].values()] == [20, 20]
    finally:
        out, err = _stop(proc)
    assert out == ""  # nothing after the URL line
    assert "S-very-secret" not in err
    assert "stopped after 1 request" in err


def test_cli_without_credentials_fails_naming_the_variables():
    from typer.testing import CliRunner

    from aurora.cli.main import app

    result = CliRunner().invoke(app, ["emulator", "--port", "0"], env={
        "APCA_API_KEY_ID": "", "APCA_API_SECRET_KEY": ""})
    assert isinstance(result.exception, CredentialsError)
    assert "APCA_API_KEY_ID" in str(result.exception)
    assert "APCA_API_SECRET_KEY" in str(result.exception)


def test_cli_rejects_synthetic_options_with_a_bars_file(tmp_path):
    from typer.testing import CliRunner

    from aurora.cli.main import app

    result = CliRunner().invoke(app, ["emulator", "--key-id", "K", "--secret-key", "S",
                                      "--bars", str(tmp_path / "x.parquet"),
                                      "--start", "2020-01-01"])
    assert isinstance(result.exception, ConfigError)
    assert "--bars" in str(result.exception)
