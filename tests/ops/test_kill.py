"""SIGKILL `aurora run` at random points in each stage, rerun, compare with a clean run.

After every kill, `latest` must be absent, the previous version, or a complete version whose
files all match its manifest. The final rerun must produce the same prices, features and
predictions (timestamps aside) as an uninterrupted run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from aurora.config import load_config
from aurora.ops.pipeline import run_pipeline
from aurora.store import Store
from aurora.store.bars import read_prices
from aurora.store.datasets import read_features
from aurora.universe import default_universe, load_universe

emulator = pytest.importorskip("aurora_testbed.emulator")

KEY_ID, SECRET = "PKKILLTEST", "kill-test-secret-123"
START, END = dt.date(2023, 1, 3), dt.date(2024, 12, 31)
SYMBOLS = default_universe().symbols[:10]
SMALL = {"AURORA_PREDICT__N_ESTIMATORS": "20", "AURORA_PREDICT__MIN_DATA_IN_LEAF": "20",
         "AURORA_PREDICT__TRAIN_SESSIONS": "250", "AURORA_PREDICT__MIN_TRAIN_SESSIONS": "120",
         "AURORA_FETCH__BATCH_SIZE": "2"}  # several batches, so fetch has points to die in
VOLATILE = ("generated_at", "created_at", "seconds", "elapsed", "version")
STAGES = ("fetch", "build", "predict")


def _strip(obj):
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if not any(t in k for t in VOLATILE)}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _outputs(store: Store) -> dict[str, object]:
    out: dict[str, object] = {}
    out["prices"] = read_prices(store)
    out["corporate_actions.parquet"] = pl.read_parquet(
        store.verified_path("corporate_actions.parquet"))
    out["features"] = read_features(store)
    out["predictions.json"] = _strip(json.loads(
        store.verified_path("predictions.json").read_text()))
    return out


def _stage_of(running: Path, pid: int) -> str | None:
    """The stage `pid` reports in state/running.json (None if it reports none)."""
    try:
        state = json.loads(running.read_text())
    except (OSError, ValueError):
        return None
    return state.get("stage") if state.get("pid") == pid else None


def _assert_consistent(store: Store, previous: set[str]) -> None:
    current = store.current_version()
    if current is None:
        assert not previous
        return
    assert current in store.versions(), f"latest -> {current}, which is not published"
    assert store.verify() == [], f"latest {current} does not verify"


def _env(url: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APCA_", "AURORA_"))}
    env.update(SMALL, APCA_API_KEY_ID=KEY_ID, APCA_API_SECRET_KEY=SECRET,
               APCA_API_DATA_URL=url, APCA_API_BASE_URL=url,
               AURORA_DATA_DIR=str(data_dir))
    return env


@pytest.mark.slow
def test_sigkill_in_every_stage_then_rerun_matches_a_clean_run(tmp_path, monkeypatch):
    market = emulator.MarketData.synthetic(SYMBOLS, START, END, seed=7)
    rng = random.Random(20261124)
    universe_file = tmp_path / "lists" / "universe.txt"  # the user's own list, anywhere
    universe_file.parent.mkdir(parents=True)
    universe_file.write_text("".join(f"{s}\n" for s in SYMBOLS))
    with emulator.EmulatorServer(market, {KEY_ID: SECRET}, rate_limit_per_minute=100_000) as srv:
        # The uninterrupted reference, in process.
        clean_dir = tmp_path / "clean"
        for name, value in _env(srv.url, clean_dir).items():
            monkeypatch.setenv(name, value)
        reference = run_pipeline(load_config(), universe=load_universe(universe_file),
                                 start=START, end=END, progress=None)
        durations = reference.stage_seconds
        expected = _outputs(Store(clean_dir))

        data_dir = tmp_path / "killed"
        store = Store(data_dir)
        argv = [sys.executable, "-m", "aurora.cli.main", "run", "--universe", str(universe_file),
                "--start", START.isoformat(), "--end", END.isoformat(), "--no-progress"]
        env = _env(srv.url, data_dir)
        killed_in = []
        running = store.state_dir / "running.json"
        for stage in STAGES:
            for attempt in range(3):  # a kill that lands after the stage ended is retried
                before = set(store.versions())
                proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and proc.poll() is None:
                    if _stage_of(running, proc.pid) == stage:
                        break
                    time.sleep(0.005)
                time.sleep(rng.uniform(0.0, 0.5 / (attempt + 1)) * durations[stage])
                in_stage = _stage_of(running, proc.pid) == stage
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
                _assert_consistent(store, before)
                if in_stage and proc.returncode == -signal.SIGKILL:
                    killed_in.append(stage)
                    break
        # The run reports its stage in state/running.json: every kill landed inside one.
        assert killed_in == list(STAGES), f"killed only in {killed_in}"
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert store.verify() == []
        got = _outputs(store)
    for name, frame in expected.items():
        if isinstance(frame, pl.DataFrame):
            assert frame.equals(got[name]), f"{name} differs after kills in {killed_in}"
        else:
            assert frame == got[name], f"{name} differs after kills in {killed_in}"
