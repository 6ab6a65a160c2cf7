"""Backups to S3 against moto's server on 127.0.0.1 (s3fs through fsspec)."""

from __future__ import annotations

import datetime as dt

import pytest
from ops_helpers import prices_frame, publish

from aurora.ops.backup import backup_store, restore_version
from aurora.store import Store

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")


@pytest.fixture(scope="module")
def s3():
    """(storage options, bucket) for a fresh moto S3 server bound to 127.0.0.1."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    options = {"endpoint_url": f"http://{host}:{port}", "key": "testing", "secret": "testing",
               "client_kwargs": {"region_name": "us-east-1"}}
    import boto3

    boto3.client("s3", endpoint_url=options["endpoint_url"], aws_access_key_id="testing",
                 aws_secret_access_key="testing", region_name="us-east-1"
                 ).create_bucket(Bucket="aurora-backups")
    yield options
    server.stop()


def test_backup_and_restore_through_s3(store, tmp_path, s3):
    v1 = publish(store, "fetch", **{"prices.parquet": prices_frame(dt.date(2024, 3, 15))})
    v2 = publish(store, "build", **{"predictions.json": {"top": ["AAA"]}})
    url = "s3://aurora-backups/team/nightly"
    report = backup_store(store, url, storage_options=s3, key="s3 passphrase")
    assert report.versions_added == [v1, v2] and report.encrypted
    assert report.url == url
    other = Store(tmp_path / "restored")
    restored = restore_version(other, url, storage_options=s3, key="s3 passphrase")
    assert restored.version == v2 and other.verify() == []
    assert (other.latest / "predictions.json").read_bytes() == (
        store.latest / "predictions.json").read_bytes()
    restore_version(other, url, version=v1, storage_options=s3, key="s3 passphrase")
    assert other.current_version() == v1
