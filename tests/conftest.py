"""Shared fixtures. Tests are offline and deterministic; servers bind to 127.0.0.1 only."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests draw the same examples on every run: a CI run never fails on an example no
# earlier run saw (set HYPOTHESIS_PROFILE=explore to search new ones locally).
settings.register_profile("deterministic", derandomize=True, database=None)
settings.register_profile("explore")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))

# Tests must never pick up a developer's credentials or config from the environment.
for _name in list(os.environ):
    if _name.startswith(("APCA_", "AURORA_")):
        del os.environ[_name]


@pytest.fixture()
def data_dir(tmp_path):
    """An empty data directory."""
    path = tmp_path / "data"
    path.mkdir()
    return path


class DaskCluster:
    """A Dask scheduler and `n` workers (one process and one thread each, no nanny unless
    asked), started with Dask's own commands on 127.0.0.1; logs in `where`."""

    def __init__(self, where: Path, n: int = 2, nanny: bool = False,
                 env: dict[str, str] | None = None) -> None:
        dask = str(Path(sys.executable).parent / "dask")
        self.where, self.env = where, {**os.environ, **(env or {})}
        where.mkdir(parents=True, exist_ok=True)
        info = where / "scheduler.json"
        self.scheduler = self._start("scheduler", [dask, "scheduler", "--host", "127.0.0.1",
                                                   "--port", "0", "--no-dashboard",
                                                   "--scheduler-file", str(info)])
        self.workers: list[subprocess.Popen] = []
        deadline = time.monotonic() + 60
        while not info.exists() or not info.read_text().strip():
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError((where / "scheduler.log").read_text())
            time.sleep(0.1)
        self.address = json.loads(info.read_text())["address"]
        self.workers = [self._start(f"worker{i}", [
            dask, "worker", self.address, "--host", "127.0.0.1", "--nthreads", "1",
            "--no-dashboard", "--memory-limit", "2GiB", "--name", f"w{i}",
            *(() if nanny else ("--no-nanny",))]) for i in range(n)]
        from distributed import Client

        with Client(self.address, timeout=30) as client:
            client.wait_for_workers(n, timeout=60)

    def _start(self, name: str, argv: list[str]) -> subprocess.Popen:
        with open(self.where / f"{name}.log", "wb") as log:
            return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                    start_new_session=True)

    def stop(self) -> None:
        for process in [*self.workers, self.scheduler]:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in [*self.workers, self.scheduler]:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture()
def s3():
    """moto's S3 server on 127.0.0.1 (over HTTP) with a bucket `aurora`: yields the storage
    options fsspec needs (endpoint_url, key, secret)."""
    pytest.importorskip("s3fs")
    moto_server = pytest.importorskip("moto.server")
    import boto3

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                 aws_secret_access_key="testing", region_name="us-east-1"
                 ).create_bucket(Bucket="aurora")
    yield {"endpoint_url": endpoint, "key": "testing", "secret": "s3-secret-value"}
    server.stop()


@pytest.fixture()
def start_dask_cluster(tmp_path):
    """Start DaskCluster(**options) in the test's directory; every one is stopped after."""
    started: list[DaskCluster] = []

    def start(**options) -> DaskCluster:
        started.append(DaskCluster(tmp_path / f"dask{len(started)}", **options))
        return started[-1]

    yield start
    for cluster in started:
        cluster.stop()


@pytest.fixture()
def dask_cluster(start_dask_cluster):
    """A scheduler and two worker processes on 127.0.0.1."""
    return start_dask_cluster()
