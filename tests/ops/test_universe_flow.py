"""One universe rule, end to end through the CLI and the emulator over HTTP.

`aurora fetch --universe <any readable path>` records the list in the version it publishes;
`aurora build`, `aurora predict` and `aurora evaluate` then use it without being told again,
and each run and version says where its symbols came from.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from ops_helpers import Receiver

from aurora.cli.main import main
from aurora.ops.history import History
from aurora.store import Store
from aurora.store.datasets import read_features
from aurora.universe import default_universe

emulator = pytest.importorskip("aurora_testbed.emulator")

KEY_ID, SECRET = "PKFLOWKEY0001", "flow-secret-77"
START, END = dt.date(2023, 1, 3), dt.date(2024, 12, 31)
SERVED = default_universe().symbols[:12]
CHOSEN = SERVED[:8]  # the user's list: a subset of what the server has
SMALL = {"AURORA_PREDICT__N_ESTIMATORS": "10", "AURORA_PREDICT__MIN_DATA_IN_LEAF": "20",
         "AURORA_PREDICT__TRAIN_SESSIONS": "200", "AURORA_PREDICT__MIN_TRAIN_SESSIONS": "120"}


@pytest.fixture(scope="module")
def server():
    market = emulator.MarketData.synthetic(SERVED, START, END, seed=11)
    with emulator.EmulatorServer(market, {KEY_ID: SECRET}, rate_limit_per_minute=10_000) as srv:
        yield srv


def _env(monkeypatch, url: str) -> None:
    for name, value in {"APCA_API_KEY_ID": KEY_ID, "APCA_API_SECRET_KEY": SECRET,
                        "APCA_API_DATA_URL": url, "APCA_API_BASE_URL": url,
                        **SMALL}.items():
        monkeypatch.setenv(name, value)


def test_a_universe_from_anywhere_is_used_by_every_later_stage(server, tmp_path, monkeypatch,
                                                               capsys):
    _env(monkeypatch, server.url)
    lists = tmp_path / "home" / "lists"  # outside the data directory
    lists.mkdir(parents=True)
    chosen = lists / "mine.txt"
    chosen.write_text("# my names\n" + "".join(f"{s}\n" for s in CHOSEN))
    data = tmp_path / "data"
    assert main(["fetch", "--data-dir", str(data), "--universe", str(chosen), "--start",
                 START.isoformat(), "--end", END.isoformat(), "--no-progress"]) == 0
    assert main(["build", "--data-dir", str(data), "--no-progress"]) == 0
    assert main(["predict", "--data-dir", str(data), "--no-progress"]) == 0
    capsys.readouterr()
    store = Store(data)
    features = read_features(store)
    assert sorted(features["symbol"].unique()) == sorted(CHOSEN)
    doc = json.loads(store.file_path("predictions.json").read_text())
    assert sorted(p["symbol"] for p in doc["predictions"]) == sorted(CHOSEN)
    assert doc["inputs"]["universe"] == str(chosen) and doc["inputs"]["symbols"] == len(CHOSEN)
    for manifest in store.lineage():  # predict, build and fetch all record the list
        assert manifest.universe is not None
        assert manifest.universe.symbols == CHOSEN and manifest.universe.source == str(chosen)
    runs = {r.command: r for r in History(data).recent_runs()}
    assert {c: (r.universe_source, r.universe_symbols) for c, r in runs.items()} == {
        c: (str(chosen), len(CHOSEN)) for c in ("fetch", "build", "predict")}
    audit = [json.loads(line) for line in (data / "audit" / "audit.jsonl").read_text()
             .splitlines()]
    assert any(r["path"] == str(chosen) for r in audit[0]["read"])  # the list was read once

    # Told otherwise, a stage uses the other list, and records it.
    other = lists / "fewer.txt"
    other.write_text("".join(f"{s}\n" for s in CHOSEN[:6]))
    assert main(["build", "--data-dir", str(data), "--universe", str(other),
                 "--no-progress"]) == 0
    assert store.universe() is not None and store.universe().source == str(other)
    features = read_features(store)
    assert sorted(features["symbol"].unique()) == sorted(CHOSEN[:6])


def test_a_failed_first_fetch_raises_one_alert_naming_it(server, tmp_path, monkeypatch,
                                                        capsys):
    _env(monkeypatch, server.url)
    monkeypatch.setenv("APCA_API_SECRET_KEY", "wrong-secret")
    receiver = Receiver()
    try:
        monkeypatch.setenv("AURORA_WEBHOOK_URL", receiver.url())
        data = tmp_path / "fresh"
        assert main(["fetch", "--data-dir", str(data), "--no-progress"]) == 3
    finally:
        receiver.close()
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.strip()] == [
        "error: the market-data API rejected the credentials (HTTP 401): check "
        "APCA_API_KEY_ID and APCA_API_SECRET_KEY"]
    [alert] = History(data).alerts()
    assert alert.rule == "failed_run" and "rejected the credentials" in alert.message
    assert [p["alert"]["rule"] for p in receiver.posts] == ["failed_run"]
    assert "stale" not in json.dumps(receiver.posts)
    metrics = (data / "metrics" / "aurora.prom").read_text()
    assert "aurora_data_stale 0" in metrics
