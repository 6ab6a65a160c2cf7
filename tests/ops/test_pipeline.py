"""End to end: the real pipeline over HTTP against the emulator on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
from ops_helpers import Receiver

from aurora.config import AuroraConfig, load_config
from aurora.errors import AuroraError
from aurora.ops.history import History
from aurora.ops.pipeline import run_pipeline
from aurora.store import Store
from aurora.store.datasets import dataset_parts
from aurora.universe import Universe, default_universe

emulator = pytest.importorskip("aurora_testbed.emulator")

SECRET = "planted-SECRET-9f3a"
KEY_ID = "PKTESTKEY0001"
START, END = dt.date(2023, 1, 3), dt.date(2024, 12, 31)
NOW = dt.datetime(2025, 1, 2, 12, tzinfo=dt.UTC)  # END is due and stored: data is fresh
SYMBOLS = default_universe().symbols[:10]
SMALL = {  # keep the model small and quick; the defaults target 130 symbols x years
    "AURORA_PREDICT__N_ESTIMATORS": "20",
    "AURORA_PREDICT__MIN_DATA_IN_LEAF": "20",
    "AURORA_PREDICT__TRAIN_SESSIONS": "250",
    "AURORA_PREDICT__MIN_TRAIN_SESSIONS": "120",
}


@pytest.fixture(scope="module")
def market():
    return emulator.MarketData.synthetic(SYMBOLS, START, END, seed=7)


def _env(monkeypatch, url: str, data_dir: Path, webhook: str | None = None) -> None:
    monkeypatch.setenv("APCA_API_KEY_ID", KEY_ID)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    monkeypatch.setenv("APCA_API_DATA_URL", url)
    monkeypatch.setenv("APCA_API_BASE_URL", url)
    monkeypatch.setenv("AURORA_DATA_DIR", str(data_dir))
    if webhook:
        monkeypatch.setenv("AURORA_WEBHOOK_URL", webhook)
    for name, value in SMALL.items():
        monkeypatch.setenv(name, value)


def _all_bytes_under(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


def test_pipeline_with_a_planted_secret_leaks_it_nowhere(market, data_dir, monkeypatch,
                                                          receiver: Receiver, capfd):
    from aurora.cli.main import main

    token_url = receiver.url("/services/T0/B0/webhook-TOKEN-77aa")
    with emulator.EmulatorServer(market, {KEY_ID: SECRET}, rate_limit_per_minute=10_000) as srv:
        _env(monkeypatch, srv.url, data_dir, webhook=token_url)
        config = load_config()
        universe = Universe(SYMBOLS, {}, "test")
        result = run_pipeline(config, universe=universe, start=START, end=END, evaluate=True,
                              progress=None, now=lambda: NOW)
        # A failing run too (fresh store, rejected secret): the secret must not be echoed.
        monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET + "-wrong")
        monkeypatch.setenv("AURORA_DATA_DIR", str(data_dir.parent / "failed"))
        with pytest.raises(AuroraError) as failure:
            run_pipeline(load_config(), universe=universe, start=START, end=END,
                         progress=None, now=lambda: NOW)
        monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
        monkeypatch.setenv("AURORA_DATA_DIR", str(data_dir))
        for argv in (["status"], ["validate"], ["backup", "--to", str(data_dir.parent / "bk")],
                     ["drill", "--from", str(data_dir.parent / "bk")]):
            assert main(argv) == 0, argv
    store = Store(data_dir)
    assert store.verify() == [] and result.version == store.current_version()
    assert {"prices.index.json", "features.meta.json", "predictions.json"} <= set(
        store.manifest().files) and dataset_parts(store.manifest(), "features")
    assert dataset_parts(store.manifest(), "prices")
    assert [name for name, ok, _ in result.checks if not ok] == []
    assert list(result.stage_seconds) == ["fetch", "validate", "build", "predict", "evaluate",
                                          "verify", "track", "report"]
    assert store.manifest().stage == "report" and "report.html" in store.manifest().files
    assert result.top and result.coverage == 1.0
    out, err = capfd.readouterr()
    texts = {"stdout": out.encode(), "stderr": err.encode(),
             "error": str(failure.value).encode(), **{str(p): b for p, b in
                                                      _all_bytes_under(data_dir.parent).items()}}
    assert any("aurora.db" in name for name in texts) and any("audit" in name for name in texts)
    for needle in (SECRET.encode(), b"webhook-TOKEN-77aa"):
        leaks = [name for name, blob in texts.items() if needle in blob]
        assert leaks == [], f"{needle!r} found in {leaks}"
    # The failed run reached the webhook, without the secret.
    assert any(p["alert"]["rule"] == "failed_run" for p in receiver.posts)
    assert SECRET not in str(receiver.posts)
    runs = History(data_dir).recent_runs(limit=20)
    assert sorted(r.command for r in runs) == ["backup", "drill", "run", "validate"]
    assert all(r.success for r in runs)
    [failed] = History(data_dir.parent / "failed").recent_runs()
    assert not failed.success and failed.exit_code == 3  # CredentialsError


def test_missing_symbol_alerts_the_webhook(data_dir, monkeypatch, receiver: Receiver):
    served = emulator.MarketData.synthetic(SYMBOLS[:-1], START, END, seed=7)  # one short
    with emulator.EmulatorServer(served, {KEY_ID: SECRET}, rate_limit_per_minute=10_000) as srv:
        _env(monkeypatch, srv.url, data_dir, webhook=receiver.url())
        with pytest.raises(AuroraError):
            run_pipeline(load_config(), universe=Universe(SYMBOLS, {}, "test"), start=START,
                         end=END, progress=None, now=lambda: NOW)
    missing = SYMBOLS[-1]
    [post] = receiver.posts  # one alert for the failed run, naming what is missing
    assert post["alert"]["rule"] == "failed_run", receiver.posts
    assert post["alert"]["details"]["missing_symbols"] == [missing]
    assert post["alert"]["details"]["failed_gates"] == ["fetch validation"]
    assert missing in post["text"] and "coverage 90.0%" in post["text"]
    [run] = History(data_dir).recent_runs()
    assert not run.success and run.coverage == pytest.approx(9 / 10)
    assert os.stat(data_dir / "aurora.db").st_mode & 0o077 == 0


def test_corrupt_latest_is_caught_then_restored_and_drilled_from_s3(market, data_dir,
                                                                   monkeypatch, capfd):
    pytest.importorskip("s3fs")
    moto_server = pytest.importorskip("moto.server")
    import boto3

    from aurora.cli.main import main

    s3 = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    s3.start()
    try:
        host, port = s3.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                     aws_secret_access_key="testing", region_name="us-east-1"
                     ).create_bucket(Bucket="aurora")
        options = ["-o", f"endpoint_url={endpoint}", "-o", "key=testing",
                   "-o", "secret=moto-secret-value"]
        url = "s3://aurora/nightly"
        with emulator.EmulatorServer(market, {KEY_ID: SECRET},
                                     rate_limit_per_minute=10_000) as srv:
            _env(monkeypatch, srv.url, data_dir)
            assert main(["run", "--universe", _universe_file(data_dir / "universe"), "--start",
                         START.isoformat(), "--end", END.isoformat(), "--no-progress"]) == 0
        assert main(["backup", "--to", url, *options]) == 0
        store = Store(data_dir)
        victim = store.latest / list(dataset_parts(store.manifest(), "features").values())[-1]
        good = victim.read_bytes()
        victim.write_bytes(good[:100] + bytes(50) + good[150:])  # corrupt in place
        capfd.readouterr()
        assert main(["validate"]) == 5
        assert "checksum" in capfd.readouterr().err
        assert main(["restore", "--from", url, *options]) == 0
        assert victim.read_bytes() == good and store.verify() == []
        assert main(["validate"]) == 0
        capfd.readouterr()
        assert main(["drill", "--from", url, *options]) == 0
        out = capfd.readouterr().out
        assert "drill PASSED" in out and "identical to the backed-up features" in out
    finally:
        s3.stop()
    audit = (data_dir / "audit" / "audit.jsonl").read_text()
    assert "moto-secret-value" not in audit and "secret=***" in audit


def _universe_file(where: Path) -> str:
    path = where / "universe.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{s}\n" for s in SYMBOLS))
    return str(path)


def test_demo_runs_offline_with_in_memory_credentials(data_dir, monkeypatch, capfd):
    from aurora.cli.main import main
    from aurora_testbed.demo import run_demo

    for name, value in SMALL.items():
        monkeypatch.setenv(name, value)
    result = run_demo(load_config(overrides={"data_dir": str(data_dir)}), symbols=SYMBOLS,
                      years=2, progress=None)
    assert not any(k.startswith("APCA_") for k in os.environ)  # never put in the environment
    lines = result.summary_lines()
    assert lines[0].startswith("aurora demo: ") and result.version in lines[0]
    assert lines[0].endswith("(synthetic)") and lines[1].startswith("SYNTHETIC DATA: ")
    assert f"checks: {len(result.checks)}/{len(result.checks)} passed" in lines
    assert any(line.startswith("top-ranked for ") for line in lines)
    assert any(line.startswith("timings: fetch ") for line in lines)
    assert result.coverage == 1.0 and len(result.top) == 10
    capfd.readouterr()
    assert main(["validate", "--data-dir", str(data_dir)]) == 0
    assert History(data_dir).recent_runs()[-1].command == "demo"
    # everything it wrote says it is synthetic, whoever reads or predicts from it later
    store = Store(data_dir)
    fetched = store.origin("prices.index.json")
    assert fetched is not None and fetched.params["synthetic"] is True
    assert all(m.prices_entry().meta("synthetic") is True for m in store.lineage()
               if m.prices_entry() is not None)
    assert json.loads(store.verified_path("predictions.json").read_text()
                      )["inputs"]["synthetic"] is True
    assert main(["predict", "--data-dir", str(data_dir), "--no-progress"]) == 0
    later = json.loads(store.verified_path("predictions.json").read_text())
    assert later["inputs"]["synthetic"] is True and store.manifest().stage == "predict"
    # a real fetch into the demo's directory is refused, naming what to do
    monkeypatch.setenv("APCA_API_KEY_ID", KEY_ID)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    capfd.readouterr()
    assert main(["fetch", "--data-dir", str(data_dir), "--no-progress"]) == 2
    err = capfd.readouterr().err.strip()
    assert err.startswith("error: ") and "(synthetic demo data)" in err
    assert "fetching from https://data.alpaca.markets would mix sources" in err
    assert "--new-history" in err and len(err.splitlines()) == 1


def test_the_demo_writes_into_a_directory_of_its_own(capsys):
    from aurora.cli.main import main

    assert main(["demo", "--help"]) == 0
    assert "./aurora-demo" in " ".join(capsys.readouterr().out.split())


def test_demo_refuses_a_store_fetched_from_a_real_api(data_dir):
    from ops_helpers import prices_frame

    from aurora.atomic import atomic_write_parquet
    from aurora.errors import ConfigError
    from aurora_testbed.demo import run_demo

    store = Store(data_dir)
    with store.transaction("fetch", base=store.current_version(),
                           params={"base_url": "https://data.alpaca.markets"}) as txn:
        atomic_write_parquet(txn.path("prices.parquet"), prices_frame(END))
    with pytest.raises(ConfigError, match=r"fetched from https://data\.alpaca\.markets"):
        run_demo(load_config(overrides={"data_dir": str(data_dir)}), symbols=SYMBOLS[:2])


def test_a_report_that_fails_does_not_fail_the_run(tmp_path, monkeypatch):
    import aurora.report
    from aurora.ops.pipeline import PipelineResult, _report

    class Run:
        def __init__(self) -> None:
            self.alerts: list = []
            self.report = None

        def alert(self, alerts) -> None:
            self.alerts.extend(alerts)

    def broken(store, config):
        raise KeyError("f_x")

    monkeypatch.setattr(aurora.report, "report", broken)
    run, result = Run(), PipelineResult("run", tmp_path)
    _report(run, result, Store(tmp_path / "data"), AuroraConfig(data_dir=tmp_path / "data"))
    assert result.report == "report not written: KeyError: 'f_x'"
    [alert] = run.alerts
    assert (alert.rule, alert.severity) == ("report_failed", "warning") and run.report is None
