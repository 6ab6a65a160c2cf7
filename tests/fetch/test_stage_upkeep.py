"""What keeps a long-running store honest: reconciliation of old corrections, a corporate-
actions outage, no-op fetches, orphaned checkpoints, subset universes and the deadline."""

from __future__ import annotations

import datetime as dt
import json
import os

import httpx
import polars as pl
import pytest
from fetch_fakeapi import KEY, SECRET, FakeAlpaca, make_bars

from aurora.config import AlpacaConfig, AuroraConfig, FetchConfig
from aurora.errors import FetchError, StoreError
from aurora.fetch import fetch_prices
from aurora.store import Store
from aurora.store.bars import read_prices
from aurora.universe import Universe
from aurora.validation import validate_store

D = dt.date
SYMBOLS = ["AAA", "BBB", "CCC"]
DIVIDEND = {"cash_dividends": [
    {"id": "d1", "symbol": "AAA", "rate": 0.5, "special": False, "foreign": False,
     "process_date": "2024-02-10", "ex_date": "2024-02-08", "cusip": "X"}]}


def config(data_dir, **fetch_settings) -> AuroraConfig:
    return AuroraConfig(
        data_dir=data_dir,
        alpaca=AlpacaConfig(key_id=KEY, secret_key=SECRET, data_url="http://api.test",
                            base_url="http://api.test"),
        fetch=FetchConfig(**{"batch_size": 2, **fetch_settings}))


def fetch(data_dir, transport, clock, *, end=D(2024, 2, 29), symbols=SYMBOLS, **settings):
    return fetch_prices(config(data_dir, **settings),
                        universe=Universe(tuple(symbols), {}, "test universe"),
                        start=D(2024, 1, 2), end=end, progress=None, sleep=clock.sleep,
                        clock=clock.time, transport=transport)


def actions_down(api: FakeAlpaca) -> httpx.MockTransport:
    """The bars answer; /v1/corporate-actions is down (HTTP 503)."""
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/corporate-actions":
            api.log.append((request.url.path, dict(request.url.params)))
            return httpx.Response(503, json={"message": "service unavailable"})
        return api(request)
    return httpx.MockTransport(handler)


def stored_prices(data_dir) -> pl.DataFrame:
    return read_prices(Store(data_dir))


def test_reconciliation_finds_an_old_correction_within_its_cycle(data_dir, clock):
    bars = make_bars(SYMBOLS, D(2024, 1, 2), D(2024, 2, 29))
    api = FakeAlpaca(bars)
    fetch(data_dir, api.transport(), clock, reconcile_cycle_runs=3)
    # a vendor correction 34 sessions back: far outside the 5-session overlap
    old = next(b for b in bars["BBB"] if b["t"].startswith("2024-01-10"))
    old["c"] = old["c"] * 1.01
    seen: list[list[str]] = []
    for _ in range(3):  # 3 symbols, a cycle of 3 runs: one symbol's whole history a run
        api.log.clear()
        report = fetch(data_dir, api.transport(), clock, reconcile_cycle_runs=3)
        seen.append(report.reconciled)
        deep = [r["symbols"] for r in api.bar_requests() if r["start"] == "2024-01-02T05:00:00Z"]
        assert deep == report.reconciled  # the only full-history request of the run
        if report.reconciled == ["BBB"]:
            assert report.reconcile_differed == {"BBB": "bar values changed on 2024-01-10"}
            assert not report.unchanged
            assert Store(data_dir).manifest().params["reconcile_differed"] == ["BBB"]
            line = next(s for s in report.summary_lines() if s.startswith("reconciliation"))
            assert line == ("reconciliation: re-read the whole history of 1 symbol(s) (BBB); "
                            "1 differed and were restated: BBB (bar values changed on "
                            "2024-01-10)")
            actions = [p for path, p in api.log if path == "/v1/corporate-actions"
                       and p["start"] == "2024-01-02"]
            assert [p["symbols"] for p in actions] == ["BBB"]  # its actions in full too
        else:
            assert report.reconcile_differed == {} and report.unchanged
    assert seen == [["AAA"], ["BBB"], ["CCC"]]
    fixed = stored_prices(data_dir).filter(
        (pl.col("symbol") == "BBB") & (pl.col("date") == D(2024, 1, 10)))
    assert fixed["close"].item() == pytest.approx(old["c"])


def test_an_actions_outage_under_raw_prices_blocks_without_blaming_the_bars(data_dir, clock):
    api = FakeAlpaca(make_bars(SYMBOLS, D(2024, 1, 2), D(2024, 3, 28)), actions=DIVIDEND)
    fetch(data_dir, api.transport(), clock)
    before = Store(data_dir).current_version()
    with pytest.raises(FetchError) as info:
        fetch(data_dir, actions_down(api), clock, end=D(2024, 3, 7), max_retries=1)
    message = str(info.value)
    assert message.startswith("corporate actions could not be fetched")
    assert "adjustment=raw" in message and "no symbol lacks bars" in message
    assert "not covered" not in message and info.value.missing_symbols == ()
    assert Store(data_dir).current_version() == before
    api.log.clear()
    report = fetch(data_dir, api.transport(), clock, end=D(2024, 3, 7))
    assert report.batches_resumed == report.batches and api.bar_requests() == []


def test_a_fetch_that_changes_nothing_publishes_nothing(data_dir, clock):
    api = FakeAlpaca(make_bars(SYMBOLS, D(2024, 1, 2), D(2024, 2, 29)), actions=DIVIDEND)
    first = fetch(data_dir, api.transport(), clock)
    store = Store(data_dir)
    versions = store.versions()
    for _ in range(3):
        report = fetch(data_dir, api.transport(), clock)
        assert store.current_version() == first.version == report.version
        assert report.unchanged
        assert report.summary_lines()[-1] == f"no change; version {first.version} stays latest"
    assert store.versions() == versions and store.current_version() == first.version
    assert not any((data_dir / "state" / "fetch").iterdir())  # the checkpoint is gone too
    # another universe record is a change
    report = fetch(data_dir, api.transport(), clock, symbols=["CCC", "BBB", "AAA"])
    assert not report.unchanged and store.current_version() == report.version != first.version


def test_orphaned_checkpoints_are_removed_when_a_fetch_starts(data_dir, clock):
    orphan = data_dir / "state" / "fetch" / "0123456789abcdef"
    orphan.mkdir(parents=True)
    (orphan / "index.json").write_text('{"batches": {}}')
    (orphan / "feedfacefeedface.parquet").write_bytes(b"PAR1")
    api = FakeAlpaca(make_bars(SYMBOLS, D(2024, 1, 2), D(2024, 2, 29)))
    report = fetch(data_dir, api.transport(), clock)
    assert not orphan.exists() and report.checkpoints_removed == 1


def test_a_subset_universe_keeps_the_other_symbols_unrefreshed(data_dir, clock):
    api = FakeAlpaca(make_bars(SYMBOLS, D(2024, 1, 2), D(2024, 3, 28)))
    fetch(data_dir, api.transport(), clock)
    report = fetch(data_dir, api.transport(), clock, end=D(2024, 3, 4), symbols=["AAA"])
    prices = stored_prices(data_dir)
    last = dict(prices.group_by("symbol").agg(pl.col("date").max()).iter_rows())
    assert last == {"AAA": D(2024, 3, 4), "BBB": D(2024, 2, 29), "CCC": D(2024, 2, 29)}
    assert report.kept_unrefreshed == ["BBB", "CCC"]
    assert ("kept 2 stored symbol(s) outside this universe, not refreshed: BBB, CCC"
            in report.summary_lines())
    assert not any("BBB" in w and "not in the universe" in w for w in report.warnings)
    store = Store(data_dir)
    assert store.manifest().universe.symbols == ("AAA",)
    assert store.manifest().params["kept_unrefreshed"] == ["BBB", "CCC"]
    # the published validation says what `aurora validate` says of this version
    published = json.loads(store.verified_path("validation.json").read_text())
    checked = validate_store(store, config(data_dir))
    assert checked.ok and published["ok"]
    assert sorted((f["check"], f["symbol"]) for f in published["findings"]) == sorted(
        (f.check, f.symbol) for f in checked.findings)
    assert {("unexpected_symbols", "BBB"), ("unexpected_symbols", "CCC")} <= {
        (f.check, f.symbol) for f in checked.findings}
    # once they would be stale (5 sessions behind), they are dropped, with a warning
    report = fetch(data_dir, api.transport(), clock, end=D(2024, 3, 8), symbols=["AAA"])
    assert report.kept_unrefreshed == [] and set(stored_prices(data_dir)["symbol"]) == {"AAA"}
    assert any("outside this universe are not kept" in w and "BBB, CCC" in w
               for w in report.warnings)


def test_the_whole_fetch_stops_at_its_deadline(data_dir, clock):
    api = FakeAlpaca(make_bars(SYMBOLS, D(2024, 1, 2), D(2024, 2, 29)))

    def slow(request: httpx.Request) -> httpx.Response:
        clock.sleep(100)  # every request takes 100 s of the (fake) wall clock
        return api(request)

    with pytest.raises(FetchError) as info:
        fetch(data_dir, httpx.MockTransport(slow), clock, batch_size=1, deadline_seconds=150)
    message = str(info.value)
    assert message.startswith("fetch.deadline_seconds: the fetch passed its 150 s deadline")
    assert "1 of 3 request groups not completed (1 symbol(s) not covered)" in message
    assert info.value.missing_symbols == ("CCC",)
    assert len(api.bar_requests()) == 2 and Store(data_dir).current_version() is None
    report = fetch(data_dir, api.transport(), clock, batch_size=1)  # resumes
    assert report.batches_resumed == 2 and report.version is not None


def test_a_batch_cut_short_by_the_fetch_deadline_is_not_a_batch_failure(tmp_path, clock):
    from aurora.deadline import Deadline, DeadlineExceeded
    from aurora.fetch.batches import BatchRequest, Checkpoint
    from aurora.fetch.batchrun import BatchRun, run_batch
    from aurora.progress import Steps

    whole = Deadline.after(60, "fetch", clock=clock.time)
    other = Deadline.after(60, "request group", clock=clock.time)

    class Client:
        def __init__(self, deadline: Deadline) -> None:
            self.deadline = deadline

        def get_bars(self, *_, **__):
            raise DeadlineExceeded(self.deadline.message(), self.deadline)

    request = BatchRequest(("AAA",), D(2024, 1, 2), D(2024, 1, 5))
    for deadline, skipped, failed in ((whole, 1, 0), (other, 0, 1)):
        run = BatchRun(Client(deadline), Checkpoint(tmp_path / "plan"), Steps(None, "x", 1),
                   "all", "sip", whole)
        run_batch(run, request)
        assert (len(run.skipped), len(run.failures)) == (skipped, failed)


def test_symbols_outside_the_universe_go_when_unexpected_symbols_are_errors(data_dir, clock):
    from aurora.config import ValidationConfig

    api = FakeAlpaca(make_bars(SYMBOLS, D(2024, 1, 2), D(2024, 3, 28)))
    fetch(data_dir, api.transport(), clock)
    strict = config(data_dir).model_copy(update={
        "validation": ValidationConfig(severities={"unexpected_symbols": "error"})})
    report = fetch_prices(strict, universe=Universe(("AAA",), {}, "one"), start=D(2024, 1, 2),
                          end=D(2024, 3, 4), progress=None, sleep=clock.sleep,
                          clock=clock.time, transport=api.transport())
    assert report.kept_unrefreshed == [] and set(stored_prices(data_dir)["symbol"]) == {"AAA"}
    assert any("2 stored symbol(s) outside this universe are not kept" in w
               for w in report.warnings)


def test_a_fetch_refuses_to_publish_over_a_tampered_stored_file(data_dir, clock):
    """After a part of the stored prices is altered (one value changed, file replaced), the next
    fetch names the file and publishes nothing; `validate` keeps reporting it."""
    api = FakeAlpaca(make_bars(SYMBOLS, D(2024, 1, 2), D(2024, 2, 29)))
    fetch(data_dir, api.transport(), clock, end=D(2024, 2, 15))
    store = Store(data_dir)
    version = store.current_version()
    path = store.archive / version / "prices/year=2024/part-0.parquet"
    altered = pl.read_parquet(path).with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(pl.col("close") * 1.01)
        .otherwise(pl.col("close")).alias("close"))
    altered.write_parquet(data_dir / "altered.parquet")
    os.replace(data_dir / "altered.parquet", path)
    with pytest.raises(StoreError, match=rf"prices/year=2024/part-0.parquet of version {version} "
                       r"does not match its manifest .*aurora validate"):
        fetch(data_dir, api.transport(), clock, end=D(2024, 2, 29))
    assert store.current_version() == version and store.versions() == [version]
    report = validate_store(store, config(data_dir))
    assert "checksum" in {f.check for f in report.errors}
