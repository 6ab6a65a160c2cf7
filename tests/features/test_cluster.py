"""Builds on a real Dask cluster: a scheduler and two worker processes started with Dask's
own commands on 127.0.0.1 (`aurora.cluster`, `aurora.features.blocks`)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import polars as pl
import pytest

from aurora.atomic import atomic_write_parquet
from aurora.cli.main import main
from aurora.cluster import ClusterError, LocalRunner, connect
from aurora.config import AuroraConfig, BuildConfig, ComputeConfig
from aurora.features.builder import build_features
from aurora.store import Store, UniverseRecord
from aurora.store.datasets import read_features

from .conftest import SECTORS, assert_features_close, random_fundamentals, random_panel

SLOW_FEATURES = '''
import os, time
from aurora.features import close, custom

def slow(x):
    if os.environ.get("AURORA_TEST_DIE"):
        os._exit(3)  # the worker process dies inside the task
    time.sleep(1.5)
    return x * 1.0

FEATURES = {"f_slow_close": custom(slow, close, lookback=1)}
'''


def _store(path: Path, prices: pl.DataFrame) -> Store:
    store = Store(path)
    universe = UniverseRecord(symbols=tuple(sorted(SECTORS)), source="test")
    with store.transaction("fetch", base=None, universe=universe,
                           params={"adjustment": "raw"}) as txn:
        atomic_write_parquet(txn.path("prices.parquet"), prices)
        txn.describe("prices.parquet", adjustment="raw")
        atomic_write_parquet(txn.path("sector_map.parquet"), pl.DataFrame(
            {"symbol": list(SECTORS), "sector": list(SECTORS.values())}))
        atomic_write_parquet(txn.path("fundamentals.parquet"), random_fundamentals(prices))
    return store


def test_a_build_on_two_workers_equals_the_in_process_one(tmp_path, dask_cluster, capsys):
    cluster = dask_cluster
    prices = random_panel(n_sessions=800, seed=41)
    on_cluster = _store(tmp_path / "cluster", prices)
    assert main(["build", "--data-dir", str(on_cluster.root), "--scheduler", cluster.address,
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert ("out of core: one task per year, computed on dask "
            f"{cluster.address} (2 workers, 2 threads), exchange state/scratch") in out
    here = _store(tmp_path / "here", prices)  # the same tasks in this process: bit for bit
    build_features(here, AuroraConfig(data_dir=here.root,
                                      compute=ComputeConfig(out_of_core=True)))
    assert read_features(on_cluster).equals(read_features(here))
    whole = _store(tmp_path / "whole", prices)
    build_features(whole, AuroraConfig(data_dir=whole.root))  # one piece
    assert_features_close(read_features(whole), read_features(on_cluster))
    with Store(on_cluster.root).verified_path("features.meta.json").open() as fh:
        assert json.load(fh)["build"]["computed_on"].startswith(f"dask {cluster.address}")


def test_a_worker_killed_mid_build_is_replaced_and_the_build_completes(tmp_path, dask_cluster):
    """A user feature's `custom` function (sent by value: the workers cannot import the
    feature file) sleeps, so the blocks last; worker w0 is killed with SIGKILL while it
    computes one. The scheduler runs that block again on w1."""
    cluster = dask_cluster
    features_file = tmp_path / "slow.py"
    features_file.write_text(SLOW_FEATURES)
    prices = random_panel(n_sessions=800, seed=43)
    store = _store(tmp_path / "data", prices)
    config = AuroraConfig(data_dir=store.root, build=BuildConfig(features=features_file))
    before = store.current_version()
    result: dict = {}

    def build() -> None:
        with connect(cluster.address) as runner:
            result["build"] = build_features(store, config, runner=runner, lookahead=False)

    from distributed import Client

    thread = threading.Thread(target=build)
    with Client(cluster.address, timeout=30) as watcher:
        thread.start()
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline, "w0 never ran a block"
            # scheduler_info() is the client's periodically refreshed copy, processing()
            # asks the scheduler now: a worker may be in the second and not yet the first.
            names = {w: info["name"] for w, info in watcher.scheduler_info()["workers"].items()}
            busy = {names.get(w): keys for w, keys in watcher.processing().items()}
            if any("compute_year" in str(k) for k in busy.get("w0", ())):
                break
            time.sleep(0.02)
        os.killpg(cluster.workers[0].pid, signal.SIGKILL)
        cluster.workers[0].wait()
        thread.join(timeout=120)
    assert not thread.is_alive() and "build" in result
    assert result["build"].version == store.current_version() != before
    assert store.verify() == []
    cluster_rows = read_features(store)
    here = _store(tmp_path / "here", prices)
    build_features(here, AuroraConfig(data_dir=here.root, build=BuildConfig(
        features=features_file)), runner=LocalRunner(), lookahead=False)
    assert cluster_rows.equals(read_features(here))


def test_a_block_that_keeps_killing_its_worker_fails_the_build_and_publishes_nothing(
        tmp_path, start_dask_cluster):
    features_file = tmp_path / "dies.py"
    features_file.write_text(SLOW_FEATURES)
    dying = start_dask_cluster(nanny=True, env={  # one retry, then the error
        "AURORA_TEST_DIE": "1", "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1"})
    store = _store(tmp_path / "data", random_panel(n_sessions=300, seed=44))
    before = store.current_version()
    config = AuroraConfig(data_dir=store.root, build=BuildConfig(features=features_file))
    with connect(dying.address) as runner, \
            pytest.raises(ClusterError, match=r"task [0-9] of 2 \(compute_year\) on "
                                              rf"{dying.address} failed: each worker that "
                                              "ran it died"):
        build_features(store, config, runner=runner, lookahead=False)
    assert store.current_version() == before and store.verify() == []
    assert list((store.state_dir / "scratch").iterdir()) == []  # no part left behind


def test_an_unreachable_scheduler_is_one_line(tmp_path, capsys):
    store = _store(tmp_path / "data", random_panel(n_sessions=300, seed=45))
    assert main(["build", "--data-dir", str(store.root), "--scheduler",
                 "tcp://127.0.0.1:9", "--no-progress"]) != 0
    err = capsys.readouterr().err
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in err
    assert err.count("\n") == 1
    shutil.rmtree(tmp_path / "data")


def test_workers_that_share_no_filesystem_exchange_through_s3(tmp_path, start_dask_cluster,
                                                                s3, monkeypatch):
    """`compute.exchange = s3://...`: the scan writes the bars and the workers their parts
    to moto's S3 server over HTTP, each process with credentials from its environment; the
    build equals the in-process one bit for bit and leaves nothing on S3."""
    import s3fs

    env = {"AWS_ENDPOINT_URL": s3["endpoint_url"], "AWS_ACCESS_KEY_ID": s3["key"],
           "AWS_SECRET_ACCESS_KEY": s3["secret"], "AWS_DEFAULT_REGION": "us-east-1"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    cluster = start_dask_cluster(env=env)
    prices = random_panel(n_sessions=600, seed=46)
    store = _store(tmp_path / "data", prices)
    config = AuroraConfig(data_dir=store.root,
                          compute=ComputeConfig(exchange="s3://aurora/exchange"))
    with connect(cluster.address) as runner:
        result = build_features(store, config, runner=runner)
    assert result.meta["build"]["exchange"] == "s3://aurora/exchange"
    assert store.verify() == []
    here = _store(tmp_path / "here", prices)
    build_features(here, AuroraConfig(data_dir=here.root,
                                      compute=ComputeConfig(out_of_core=True)))
    assert read_features(store).equals(read_features(here))
    bucket = s3fs.S3FileSystem(endpoint_url=s3["endpoint_url"], key=s3["key"],
                               secret=s3["secret"], skip_instance_cache=True)
    assert bucket.find("aurora/exchange") == []  # the build's directory is gone
    assert list((store.state_dir / "scratch").iterdir()) == []
