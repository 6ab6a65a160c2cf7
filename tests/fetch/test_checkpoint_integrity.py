"""Checkpoints are trusted by their sha256, not by their row count alone: a checkpoint file
altered after it was saved (one value changed, same rows) is fetched again, with a logged
warning, and never published."""

from __future__ import annotations

import datetime as dt
import json
import logging

import httpx
import polars as pl
import pytest
from fetch_fakeapi import KEY, SECRET, FakeAlpaca, make_bars

from aurora.atomic import sha256_file
from aurora.config import AlpacaConfig, AuroraConfig, FetchConfig
from aurora.errors import FetchError
from aurora.fetch import fetch_prices
from aurora.fetch.batches import BatchRequest, Checkpoint
from aurora.store import Store
from aurora.store.bars import read_prices
from aurora.universe import Universe

D = dt.date
START, END = D(2024, 1, 2), D(2024, 2, 29)
SYMBOLS = ["AAA", "BBB", "CCC"]


def tamper(path, row: int = 3, factor: float = 1.01) -> None:
    """Change one close of a checkpoint file and rewrite it: same rows, other bytes."""
    frame = pl.read_parquet(path)
    altered = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == row).then(pl.col("close") * factor)
        .otherwise(pl.col("close")).alias("close"))
    assert altered.height == frame.height and not altered.equals(frame)
    altered.write_parquet(path)


def test_the_index_records_the_sha256_and_a_tampered_file_is_not_trusted(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="aurora.fetch.batches")
    checkpoint = Checkpoint(tmp_path / "plan")
    request = BatchRequest(("AAA",), START, D(2024, 1, 8))
    frame = pl.DataFrame({"date": [D(2024, 1, d) for d in (2, 3, 4, 5, 8)],
                          "symbol": ["AAA"] * 5, "close": [10.0, 11.0, 12.0, 13.0, 14.0]})
    checkpoint.save(request, frame)
    path = tmp_path / "plan" / f"{request.key}.parquet"
    entry = json.loads((tmp_path / "plan" / "index.json").read_text())["batches"][request.key]
    assert entry["sha256"] == sha256_file(path) and entry["rows"] == 5
    assert checkpoint.load(request).equals(frame) and caplog.records == []

    tamper(path)
    assert pl.read_parquet(path).height == entry["rows"]  # the row count still matches
    assert checkpoint.load(request) is None
    [record] = caplog.records
    assert record.getMessage() == (
        f"checkpoint of batch AAA (1 symbols, 2024-01-02..2024-01-08) in {tmp_path / 'plan'} "
        "does not match the sha256 recorded in its index; fetching the batch again")

    # an entry without a sha256 (an index written before checksums) is not trusted either
    checkpoint.save(request, frame)
    index = json.loads((tmp_path / "plan" / "index.json").read_text())
    del index["batches"][request.key]["sha256"]
    (tmp_path / "plan" / "index.json").write_text(json.dumps(index))
    assert checkpoint.load(request) is None
    assert "has no sha256 recorded" in caplog.records[-1].getMessage()


def config(data_dir) -> AuroraConfig:
    return AuroraConfig(
        data_dir=data_dir,
        alpaca=AlpacaConfig(key_id=KEY, secret_key=SECRET, data_url="http://api.test",
                            base_url="http://api.test"),
        fetch=FetchConfig(batch_size=1, max_retries=1))


def fetch(data_dir, transport, clock):
    return fetch_prices(config(data_dir), universe=Universe(tuple(SYMBOLS), {}, "test"),
                        start=START, end=END, progress=None, sleep=clock.sleep,
                        clock=clock.time, transport=transport)


def test_a_corrupted_checkpoint_is_fetched_again_not_published(data_dir, clock, caplog):
    bars = make_bars(SYMBOLS, START, END)
    api = FakeAlpaca(bars)

    def bbb_down(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("symbols") == "BBB":
            return httpx.Response(500, json={"message": "internal error"})
        return api(request)

    with pytest.raises(FetchError, match="BBB"):  # AAA and CCC are checkpointed
        fetch(data_dir, httpx.MockTransport(bbb_down), clock)
    [plan] = (data_dir / "state" / "fetch").iterdir()
    index = json.loads((plan / "index.json").read_text())["batches"]
    [aaa] = [e for e in index.values() if e["symbols"] == ["AAA"]]
    tamper(plan / aaa["file"])

    caplog.set_level(logging.WARNING, logger="aurora.fetch.batches")
    api.log.clear()
    report = fetch(data_dir, api.transport(), clock)
    assert sorted(r["symbols"] for r in api.bar_requests()) == ["AAA", "BBB"]
    assert report.batches_resumed == 1  # CCC only
    assert any("checkpoint of batch AAA" in r.getMessage() and "sha256" in r.getMessage()
               for r in caplog.records)
    prices = read_prices(Store(data_dir))
    served = [b["c"] for b in bars["AAA"]]
    assert prices.filter(pl.col("symbol") == "AAA").sort("date").get_column(
        "close").to_list() == served  # the served values, not the tampered one
