"""fetch_prices end to end over httpx.MockTransport: publish, incremental, restatement,
failures, resume, credentials, secrets."""

from __future__ import annotations

import datetime as dt
import json
import logging

import httpx
import polars as pl
import pytest
from fetch_fakeapi import KEY, SECRET, FakeAlpaca, make_bars

from aurora.atomic import atomic_write_parquet
from aurora.config import AlpacaConfig, AuroraConfig, FetchConfig
from aurora.errors import CredentialsError, DataValidationError, FetchError
from aurora.features import build_features
from aurora.fetch import fetch_prices
from aurora.store import Store, UniverseRecord
from aurora.store.bars import index_findings, read_prices
from aurora.universe import Universe

D = dt.date
SYMBOLS = ["AAA", "BBB", "CCC"]
UNIVERSE = Universe(tuple(SYMBOLS), {"AAA": "Energy"}, "test universe")


def config(data_dir, secret=SECRET, **fetch) -> AuroraConfig:
    return AuroraConfig(
        data_dir=data_dir,
        alpaca=AlpacaConfig(key_id=KEY, secret_key=secret, data_url="http://api.test",
                            base_url="http://api.test"),
        fetch=FetchConfig(**{"batch_size": 2, **fetch}),
    )


def run(data_dir, api, clock, *, end=D(2024, 2, 29), start=D(2024, 1, 2), secret=SECRET,
        progress=None, universe=UNIVERSE, **fetch):
    return fetch_prices(config(data_dir, secret, **fetch), universe=universe, start=start,
                        end=end, progress=progress, sleep=clock.sleep, clock=clock.time,
                        transport=api.transport())


def expected_frame(bars: dict[str, list[dict]], end: dt.date) -> pl.DataFrame:
    rows = [(s, b) for s in sorted(bars) for b in bars[s]]
    frame = pl.DataFrame({
        "symbol": [s for s, _ in rows], "t": [b["t"] for _, b in rows],
        "close": [float(b["c"]) for _, b in rows]})
    frame = frame.with_columns(date=pl.col("t").str.to_datetime(time_zone="UTC")
                               .dt.convert_time_zone("America/New_York").dt.date())
    return frame.filter(pl.col("date") <= end).select("symbol", "date", "close")


def stored(data_dir) -> pl.DataFrame:
    return read_prices(Store(data_dir))


def test_first_fetch_publishes_everything(data_dir, clock):
    bars = make_bars(SYMBOLS, D(2024, 1, 2), D(2024, 3, 28))
    api = FakeAlpaca(bars, actions={"cash_dividends": [
        {"id": "d1", "symbol": "AAA", "rate": 0.5, "special": False, "foreign": False,
         "process_date": "2024-02-10", "ex_date": "2024-02-08", "cusip": "X"}]})
    report = run(data_dir, api, clock)
    prices = stored(data_dir)
    assert prices.select("symbol", "date", "close").equals(
        expected_frame(bars, D(2024, 2, 29)))
    assert prices.schema["date"] == pl.Date and prices.schema["trade_count"] == pl.Int64
    assert report.bars == prices.height == 3 * 41 and report.sessions == 41
    assert report.symbols == 3 and report.batches == 2 and report.version
    # 2 bar + 2 actions batches + 1 to the trading API's /v2/assets
    assert report.requests == report.successful_requests == 5
    assert [path for path, _ in api.log].count("/v2/assets") == 1
    assert report.assets == {"inactive": {}, "not_tradable": [], "unknown": [], "listed": 3,
                             "error": None}
    store = Store(data_dir)
    manifest = store.manifest()
    assert manifest.params["universe"] == SYMBOLS
    assert manifest.params["adjustment"] == "raw" and manifest.params["feed"] == "sip"
    meta = manifest.prices_entry().meta
    assert (meta("rows"), meta("symbols"), meta("date_min"), meta("date_max")) == (
        123, 3, "2024-01-02", "2024-02-29")
    assert manifest.files["sector_map.parquet"].meta("source") == "default"
    assert set(manifest.files) >= {"prices.index.json", "corporate_actions.parquet",
                                   "validation.json", "fetch_report.json", "universe.txt"}
    actions = pl.read_parquet(store.file_path("corporate_actions.parquet"))
    assert actions.row(0, named=True) | {} == {
        "id": "d1", "action_type": "cash_dividend", "symbol": "AAA", "old_symbol": None,
        "ex_date": D(2024, 2, 8), "process_date": D(2024, 2, 10), "old_rate": None,
        "new_rate": None, "cash_rate": 0.5, "target_symbol": None}
    assert json.loads(store.file_path("validation.json").read_text())["ok"] is True
    assert manifest.universe is not None and manifest.universe.symbols == tuple(SYMBOLS)
    assert manifest.universe.source == "test universe"
    assert not (data_dir / "universe").exists()  # the version records it, no side file
    assert not any((data_dir / "state" / "fetch").iterdir())  # checkpoint removed
    assert (data_dir / "state" / "ratelimit.json").exists()
    assert any("requests: 5" in line for line in report.summary_lines())


def test_incremental_fetch_asks_only_for_the_overlap(data_dir, clock):
    bars = make_bars(SYMBOLS, D(2024, 1, 2), D(2024, 3, 28))
    api = FakeAlpaca(bars)
    run(data_dir, api, clock, end=D(2024, 2, 29), reconcile_cycle_runs=0)
    api.log.clear()
    report = run(data_dir, api, clock, end=D(2024, 3, 7), reconcile_cycle_runs=0)
    requests = api.bar_requests()
    # five sessions before Feb 29 is Feb 22 (New York midnight = 05:00Z in winter)
    assert {r["start"] for r in requests} == {"2024-02-22T05:00:00Z"}
    assert report.restated == {} and report.bars_fetched == 3 * 11  # 6 overlap + 5 new
    assert stored(data_dir).select("symbol", "date", "close").equals(
        expected_frame(bars, D(2024, 3, 7)))


def test_a_daily_fetch_writes_only_the_year_it_adds_to(data_dir, clock):
    """The prices are a part per year: the next day's fetch rewrites this year's part and
    carries last year's over unchanged (the same bytes, adopted from the version before)."""
    bars = make_bars(SYMBOLS, D(2023, 11, 1), D(2024, 3, 28))
    api = FakeAlpaca(bars)
    run(data_dir, api, clock, start=D(2023, 11, 1), end=D(2024, 2, 28), reconcile_cycle_runs=0)
    store = Store(data_dir)
    before = store.manifest()
    run(data_dir, api, clock, start=D(2023, 11, 1), end=D(2024, 2, 29), reconcile_cycle_runs=0)
    after = store.manifest()
    old, new = "prices/year=2023/part-0.parquet", "prices/year=2024/part-0.parquet"
    assert after.files[old].sha256 == before.files[old].sha256
    assert after.files[old].meta("adopted_from") == before.version
    assert after.files[new].sha256 != before.files[new].sha256
    assert after.prices_entry().meta("date_max") == "2024-02-29"
    assert stored(data_dir).select("symbol", "date", "close").equals(
        expected_frame(bars, D(2024, 2, 29)).filter(pl.col("date") >= D(2023, 11, 1)))
    assert index_findings(store, after.version) == []


def test_restatement_inside_overlap_refetches_that_symbol_in_full(data_dir, clock):
    bars = make_bars(SYMBOLS, D(2024, 1, 2), D(2024, 3, 28))
    api = FakeAlpaca(bars)
    run(data_dir, api, clock, end=D(2024, 2, 29), reconcile_cycle_runs=0)
    revised = next(b for b in bars["BBB"] if b["t"].startswith("2024-02-27"))
    revised["c"] = revised["c"] * 1.002
    api.log.clear()
    report = run(data_dir, api, clock, end=D(2024, 3, 7), reconcile_cycle_runs=0)
    assert report.restated == {"BBB": "bar values changed on 2024-02-27"}
    full = [r for r in api.bar_requests() if r["start"] == "2024-01-02T05:00:00Z"]
    assert [r["symbols"] for r in full] == ["BBB"]
    prices = stored(data_dir)
    assert prices.select("symbol", "date", "close").equals(expected_frame(bars, D(2024, 3, 7)))
    assert Store(data_dir).manifest().params["restated"] == ["BBB"]


def test_bad_credentials_fail_cleanly_and_leave_latest(data_dir, clock):
    api = FakeAlpaca(make_bars(SYMBOLS, D(2024, 1, 2), D(2024, 2, 29)))
    run(data_dir, api, clock)
    store = Store(data_dir)
    before = store.current_version()
    api.log.clear()
    with pytest.raises(CredentialsError) as info:
        run(data_dir, api, clock, end=D(2024, 3, 7), secret="wrong-secret-value")
    assert "APCA_API_KEY_ID" in str(info.value) and "wrong-secret-value" not in str(info.value)
    assert len(api.log) == 1  # no retry, no other batch
    assert store.current_version() == before and store.verify() == []


def failing_for(api: FakeAlpaca, symbol: str, status: int = 500):
    def handler(request: httpx.Request) -> httpx.Response:
        if (request.url.path == "/v2/stocks/bars"
                and symbol in request.url.params.get("symbols", "").split(",")):
            api.log.append((request.url.path, dict(request.url.params)))
            return httpx.Response(status, json={"message": "internal server error occurred"})
        return api(request)
    return httpx.MockTransport(handler)


def test_failed_batch_is_reported_others_go_on_then_resume(data_dir, clock):
    api = FakeAlpaca(make_bars(SYMBOLS, D(2024, 1, 2), D(2024, 2, 29)))
    cfg = config(data_dir, batch_size=1, max_retries=2)
    with pytest.raises(FetchError) as info:
        fetch_prices(cfg, universe=UNIVERSE, start=D(2024, 1, 2), end=D(2024, 2, 29),
                     progress=None, sleep=clock.sleep, clock=clock.time,
                     transport=failing_for(api, "BBB"))
    assert "BBB" in str(info.value) and "after 3 attempts" in str(info.value)
    assert Store(data_dir).current_version() is None  # nothing published
    failures = json.loads((data_dir / "state" / "fetch-failures.json").read_text())
    assert [f["symbols"] for f in failures["failures"]] == [["BBB"]]
    asked = [r["symbols"] for r in api.bar_requests()]
    assert asked.count("AAA") == 1 and asked.count("CCC") == 1  # the others went on
    api.log.clear()
    report = fetch_prices(cfg, universe=UNIVERSE, start=D(2024, 1, 2), end=D(2024, 2, 29),
                          progress=None, sleep=clock.sleep, clock=clock.time,
                          transport=api.transport())
    assert [r["symbols"] for r in api.bar_requests()] == ["BBB"]  # resumed
    assert report.batches_resumed == 2
    prices = stored(data_dir)
    assert prices.height == 3 * 41 and prices.select("symbol", "date").is_duplicated().sum() == 0


def test_killed_run_resumes_without_refetching_or_duplicates(data_dir, clock):
    api = FakeAlpaca(make_bars(SYMBOLS, D(2024, 1, 2), D(2024, 2, 29)))
    calls = []

    def dying(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process is interrupted inside the second batch
        return api(request)

    cfg = config(data_dir, batch_size=1)
    with pytest.raises(KeyboardInterrupt):
        fetch_prices(cfg, universe=UNIVERSE, start=D(2024, 1, 2), end=D(2024, 2, 29),
                     progress=None, sleep=clock.sleep, clock=clock.time,
                     transport=httpx.MockTransport(dying))
    assert Store(data_dir).current_version() is None
    api.log.clear()
    report = fetch_prices(cfg, universe=UNIVERSE, start=D(2024, 1, 2), end=D(2024, 2, 29),
                          progress=None, sleep=clock.sleep, clock=clock.time,
                          transport=api.transport())
    assert [r["symbols"] for r in api.bar_requests()] == ["BBB", "CCC"]
    assert report.batches_resumed == 1
    prices = stored(data_dir)
    assert prices.height == 3 * 41 and prices.select("symbol", "date").is_duplicated().sum() == 0


def test_validation_errors_block_publication(data_dir, clock):
    bars = make_bars(SYMBOLS, D(2024, 1, 2), D(2024, 2, 29))
    api = FakeAlpaca(bars)
    run(data_dir, api, clock, end=D(2024, 2, 15))
    store = Store(data_dir)
    before = store.current_version()
    bad = next(b for b in bars["CCC"] if b["t"].startswith("2024-02-26"))
    bad["h"], bad["l"] = bad["l"], bad["h"]  # high below low
    with pytest.raises(DataValidationError, match="CCC"):
        run(data_dir, api, clock, end=D(2024, 2, 29))
    assert store.current_version() == before
    report = json.loads((data_dir / "state" / "fetch-validation-report.json").read_text())
    assert report["ok"] is False
    assert any(f["symbol"] == "CCC" and "2024-02-26" in f["dates"] for f in report["findings"])


def test_a_store_of_vendor_adjusted_bars_is_migrated_to_raw(data_dir, clock):
    """A store an older Aurora filled with adjustment=all bars: the next fetch re-fetches
    the whole history raw (and says why); the build refuses the old versions' bars."""
    api = FakeAlpaca(make_bars(SYMBOLS, D(2024, 1, 2), D(2024, 2, 29)))
    run(data_dir, api, clock, end=D(2024, 2, 15))
    store = Store(data_dir)
    old = store.current_version()
    with store.transaction("fetch", base=old, params={"adjustment": "all"}) as txn:
        txn.remove("prices")  # what an older Aurora wrote: one file
        txn.remove("prices.index.json")
        atomic_write_parquet(txn.path("prices.parquet"), stored(data_dir))
        txn.describe("prices.parquet", adjustment="all", feed="sip",
                     source_url="http://api.test", synthetic=False)
    legacy = store.current_version()
    with pytest.raises(DataValidationError, match=r"hold vendor-adjusted bars \(adjustment=all"
                       r"\).*run `aurora fetch`"):
        build_features(store, config(data_dir))
    api.log.clear()
    report = run(data_dir, api, clock, end=D(2024, 2, 29))
    assert {r["start"] for r in api.bar_requests()} == {"2024-01-02T05:00:00Z"}
    assert {r["adjustment"] for r in api.bar_requests()} == {"raw"}
    assert any("adjustment=all" in w for w in report.warnings)
    assert store.manifest().prices_entry().meta("adjustment") == "raw"
    assert legacy in store.versions()  # old versions stay readable


def test_secret_never_written_or_printed(data_dir, clock, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    api = FakeAlpaca(make_bars(SYMBOLS, D(2024, 1, 2), D(2024, 2, 29)))
    api.faults += [httpx.Response(500, text=f"echo {SECRET}"), httpx.ReadTimeout("slow")]
    reports: list[tuple[str, int, int]] = []
    run(data_dir, api, clock, progress=lambda *report: reports.append(report))
    with pytest.raises(FetchError) as failed:
        fetch_prices(config(data_dir, max_retries=0), universe=UNIVERSE, start=D(2024, 1, 2),
                     end=D(2024, 3, 7), progress=None, sleep=clock.sleep, clock=clock.time,
                     transport=failing_for(api, "AAA"))
    assert reports[-1] == ("fetch bars", 2, 2)
    out = capsys.readouterr()
    texts = [out.out, out.err, caplog.text, str(failed.value), str(failed.value.report)]
    texts += [p.read_bytes().decode("latin-1") for p in data_dir.rglob("*") if p.is_file()]
    assert len(texts) > 10
    for text in texts:
        assert SECRET not in text and KEY not in text


def test_the_recorded_universe_is_the_next_default(data_dir, clock):
    api = FakeAlpaca(make_bars(SYMBOLS, D(2024, 1, 2), D(2024, 2, 29)))
    run(data_dir, api, clock, end=D(2024, 2, 15), universe=Universe(("AAA", "BBB"), {}, "two"))
    store = Store(data_dir)
    assert store.universe() == UniverseRecord(symbols=("AAA", "BBB"), source="two")
    report = run(data_dir, api, clock, end=D(2024, 2, 29), universe=None)  # nothing said
    assert report.symbols == 2 and store.file_path("universe.txt").read_text().split() == [
        "AAA", "BBB"]
    assert store.universe() == UniverseRecord(symbols=("AAA", "BBB"), source="two")


def test_a_version_published_meanwhile_is_never_reverted(data_dir, clock):
    import httpx

    from aurora.atomic import atomic_write_text
    from aurora.errors import StoreError

    api = FakeAlpaca(make_bars(SYMBOLS, D(2024, 1, 2), D(2024, 2, 29)))
    run(data_dir, api, clock, end=D(2024, 2, 15))
    inner, raced = api.transport(), []

    def handler(request: httpx.Request) -> httpx.Response:
        if not raced:  # another process publishes while this fetch is under way
            other = Store(data_dir)
            with other.transaction("import", base=other.current_version()) as txn:
                atomic_write_text(txn.path("note.txt"), "concurrent\n")
            raced.append(Store(data_dir).current_version())
        return inner.handle_request(request)

    with pytest.raises(StoreError, match="another run published"):
        fetch_prices(config(data_dir), universe=UNIVERSE, start=D(2024, 1, 2),
                     end=D(2024, 2, 29), progress=None, sleep=clock.sleep, clock=clock.time,
                     transport=httpx.MockTransport(handler))
    assert Store(data_dir).current_version() == raced[0]
    assert Store(data_dir).file_path("note.txt") is not None


class ProcessDateAlpaca(FakeAlpaca):
    """Answers /v1/corporate-actions as the contract says: `start`..`end` matched against
    each action's process_date."""

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path != "/v1/corporate-actions" or self.faults:
            return super().__call__(request)
        params = dict(request.url.params)
        self.log.append((request.url.path, params))
        chosen = {kind: [a for a in rows
                         if params["start"] <= a["process_date"] <= params["end"]]
                  for kind, rows in self.actions.items()}
        return httpx.Response(200, json={"corporate_actions": chosen,
                                         "next_page_token": None})


def test_a_dividend_processed_after_the_fetch_end_is_kept_when_it_went_ex_before_it(
        data_dir, clock):
    """A cash dividend's process_date can be its payable date: one ex on 2024-02-27 and
    processed on 2024-03-12 belongs to a fetch ending 2024-02-29 (its ex-date drop is in
    those bars), and so does one going ex on the next session, 2024-03-01 (the pre-close
    prediction of that day applies it); one ex on 2024-03-05 does not, yet."""
    bars = make_bars(SYMBOLS, D(2024, 1, 2), D(2024, 3, 28))
    dividend = {"symbol": "AAA", "rate": 0.5, "special": False, "foreign": False,
                "cusip": "X"}
    api = ProcessDateAlpaca(bars, actions={"cash_dividends": [
        dividend | {"id": "d1", "ex_date": "2024-02-27", "process_date": "2024-03-12"},
        dividend | {"id": "d2", "ex_date": "2024-03-05", "process_date": "2024-03-20"},
        dividend | {"id": "d3", "ex_date": "2024-03-01", "process_date": "2024-03-01"}]})
    run(data_dir, api, clock)
    store = Store(data_dir)
    actions = pl.read_parquet(store.file_path("corporate_actions.parquet"))
    assert sorted(actions["id"].to_list()) == ["d1", "d3"]
    asked = [p for path, p in api.log if path == "/v1/corporate-actions"]
    assert asked and all(p["end"] >= "2024-03-20" for p in asked)


def test_a_server_refusing_actions_processed_in_the_future_is_asked_up_to_the_end(
        data_dir, clock, caplog):
    """A server that answers 422 to an `end` after its today still gets the actions
    processed within the fetch's window: the fetch publishes, with a warning."""

    class NoFuture(ProcessDateAlpaca):
        def __call__(self, request: httpx.Request) -> httpx.Response:
            if (request.url.path == "/v1/corporate-actions"
                    and request.url.params["end"] > "2024-03-01"):
                self.log.append((request.url.path, dict(request.url.params)))
                return httpx.Response(422, json={"message": "end is in the future"})
            return super().__call__(request)

    caplog.set_level(logging.WARNING, logger="aurora.fetch.actions_fetch")
    bars = make_bars(SYMBOLS, D(2024, 1, 2), D(2024, 3, 28))
    api = NoFuture(bars, actions={"cash_dividends": [
        {"id": "d1", "symbol": "AAA", "rate": 0.5, "special": False, "foreign": False,
         "cusip": "X", "ex_date": "2024-02-08", "process_date": "2024-02-10"}]})
    report = run(data_dir, api, clock)
    assert report.version
    actions = pl.read_parquet(Store(data_dir).file_path("corporate_actions.parquet"))
    assert actions["id"].to_list() == ["d1"]
    assert any("were refused" in r.getMessage() for r in caplog.records)


class SymbolFilteredAlpaca(ProcessDateAlpaca):
    """Also filters by `symbols` as Alpaca files actions: under the symbol of the day (a
    name change under both its old and new symbol)."""

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path != "/v1/corporate-actions" or self.faults:
            return super().__call__(request)
        wanted = set(request.url.params["symbols"].split(","))
        params = dict(request.url.params)
        self.log.append((request.url.path, params))
        chosen = {kind: [a for a in rows
                         if params["start"] <= a["process_date"] <= params["end"]
                         and wanted & {a.get("symbol"), a.get("old_symbol"),
                                       a.get("new_symbol")}]
                  for kind, rows in self.actions.items()}
        return httpx.Response(200, json={"corporate_actions": chosen,
                                         "next_page_token": None})


def _dividend(id_, symbol, day):
    return {"id": id_, "symbol": symbol, "rate": 0.1, "special": False, "foreign": False,
            "cusip": "X", "ex_date": day, "process_date": day}


def _rename(id_, old, new, day):
    return {"id": id_, "old_symbol": old, "new_symbol": new, "old_cusip": "A",
            "new_cusip": "B", "process_date": day}


def test_a_renamed_symbol_gets_the_actions_of_its_earlier_names(data_dir, clock):
    """CCC was OLD from 2024-01-08 to 2024-02-01, and OLDER before; its bars carry that
    history (Alpaca's asof mapping), so the dividends OLD and OLDER paid before their
    renames are CCC's, under ids of their own. Alpaca files them under the old symbols, so
    they are asked by those. Tickers are reused: what another company filed under OLD
    before 2024-01-08, or after ZZZ took the name on 2024-03-15, is not CCC's, nor ZZZ's;
    nor is what was filed under CCC before OLD took that name (META was a Roundhill ETF's
    ticker before Facebook's), kept neither in the fetch nor from the stored table."""
    bars = make_bars(SYMBOLS, D(2024, 1, 2), D(2024, 3, 28))
    api = SymbolFilteredAlpaca(bars, actions={
        "name_changes": [_rename("n1", "OLD", "CCC", "2024-02-01"),
                         _rename("n0", "OLDER", "OLD", "2024-01-08"),
                         _rename("n2", "ZZZ", "OLD", "2024-03-15")],  # OLD reused
        "cash_dividends": [_dividend("d_old", "OLD", "2024-01-10"),
                           _dividend("d_older", "OLDER", "2024-01-04"),
                           _dividend("d_prev", "OLD", "2024-01-03"),  # OLD's earlier holder
                           _dividend("d_late", "OLD", "2024-02-05"),  # after the rename
                           _dividend("d_zzz", "ZZZ", "2024-01-05"),
                           _dividend("d_ccc", "CCC", "2024-02-20"),
                           _dividend("d_ccc_prev", "CCC", "2024-01-16")]})  # CCC's holder then
    report = run(data_dir, api, clock)
    assert any("left out 1 filed under CCC" in w and "d_ccc_prev" in w
               for w in report.warnings)
    actions = pl.read_parquet(Store(data_dir).file_path("corporate_actions.parquet"))
    mine = actions.filter(pl.col("symbol") == "CCC").sort("ex_date")
    assert mine.select("id", "action_type").rows() == [
        ("d_older@CCC", "cash_dividend"), ("d_old@CCC", "cash_dividend"),
        ("n1", "name_change"), ("d_ccc", "cash_dividend")]
    asked = [p["symbols"] for path, p in api.log if path == "/v1/corporate-actions"]
    assert asked.count("OLD") == 1 and asked.count("OLDER") == 1  # each name once, alone


def test_a_chain_of_renames_follows_one_company_through_reused_tickers(data_dir, clock):
    """AAA went away as TMP on 01-10 and came back on 01-22: its dividends under AAA before
    01-10 and under TMP in between stay AAA's. CCC was AOLD's company's name from 01-08
    until it left as XOUT on 01-17; COLD's company took CCC on 02-01: AOLD's and CCC's
    dividends until 01-17 are XOUT's company's, not CCC's, while COLD's are CCC's, and so is
    a split on the rename day."""
    bars = make_bars(SYMBOLS, D(2024, 1, 2), D(2024, 3, 28))
    api = SymbolFilteredAlpaca(bars, actions={
        "name_changes": [_rename("r1", "AAA", "TMP", "2024-01-10"),
                         _rename("r2", "TMP", "AAA", "2024-01-22"),
                         _rename("r3", "AOLD", "CCC", "2024-01-08"),
                         _rename("r4", "CCC", "XOUT", "2024-01-17"),
                         _rename("r5", "COLD", "CCC", "2024-02-01")],
        "cash_dividends": [_dividend("a_early", "AAA", "2024-01-04"),
                           _dividend("a_tmp", "TMP", "2024-01-12"),
                           _dividend("a_late", "AAA", "2024-02-12"),
                           _dividend("x_aold", "AOLD", "2024-01-04"),
                           _dividend("x_ccc", "CCC", "2024-01-11"),
                           _dividend("c_cold", "COLD", "2024-01-15")],
        "forward_splits": [{"id": "c_split", "symbol": "CCC", "new_rate": 2, "old_rate": 1,
                            "cusip": "X", "ex_date": "2024-02-01",
                            "process_date": "2024-02-01"}]})
    run(data_dir, api, clock)
    actions = pl.read_parquet(Store(data_dir).file_path("corporate_actions.parquet"))

    def ids(symbol):
        return sorted(actions.filter((pl.col("symbol") == symbol)
                                     & (pl.col("action_type") != "name_change"))["id"])

    assert ids("AAA") == ["a_early@AAA", "a_late", "a_tmp@AAA"]
    assert ids("CCC") == ["c_cold@CCC", "c_split"]
    asked = [(name, p["end"]) for path, p in api.log if path == "/v1/corporate-actions"
             for name in p["symbols"].split(",")]
    names = [name for name, _ in asked]
    assert names.count("TMP") == 1 and names.count("COLD") == 1 and "AOLD" not in names
    assert all(end >= "2024-02-01" for name, end in asked)  # up to the renames needed


def test_a_ticker_that_comes_back_keeps_its_old_actions_when_an_update_sees_it(data_dir,
                                                                              clock):
    """AAA paid a dividend in 2023 and became TMP on 2024-03-04; an incremental fetch sees
    TMP become AAA again on 2024-05-01: AAA was asked only a quarter back, so its chain asks
    it again over the whole history, and the 2023 dividend stays AAA's (as its copy), with
    no warning about another company."""
    bars = make_bars(SYMBOLS, D(2023, 6, 1), D(2024, 6, 28))
    api = SymbolFilteredAlpaca(bars, actions={
        "name_changes": [_rename("r1", "AAA", "TMP", "2024-03-04")],
        "cash_dividends": [_dividend("a_old", "AAA", "2023-07-03")]})
    run(data_dir, api, clock, start=D(2023, 6, 1), end=D(2024, 3, 28), reconcile_cycle_runs=0)
    api.actions["name_changes"] += [_rename("r2", "TMP", "AAA", "2024-05-01")]
    report = run(data_dir, api, clock, start=D(2023, 6, 1), end=D(2024, 5, 31),
                 reconcile_cycle_runs=0)
    actions = pl.read_parquet(Store(data_dir).file_path("corporate_actions.parquet"))
    assert sorted(actions.filter((pl.col("symbol") == "AAA")
                                 & (pl.col("action_type") != "name_change"))["id"]) == [
        "a_old@AAA"]
    assert not [w for w in report.warnings if "left out" in w]


def test_a_rename_published_late_with_an_earlier_date_starts_no_chain(data_dir, clock):
    """The stored table says AOLD became CCC on 2023-07-03; a rename YYY to CCC dated
    2023-06-15 but published in March 2024 (its process date, inside an update's window) is
    older than that, so it changes nothing: CCC keeps AOLD's dividend and gets none of
    YYY's."""
    bars = make_bars(SYMBOLS, D(2023, 6, 1), D(2024, 3, 28))
    api = SymbolFilteredAlpaca(bars, actions={
        "name_changes": [_rename("r3", "AOLD", "CCC", "2023-07-03")],
        "cash_dividends": [_dividend("x_aold", "AOLD", "2023-06-20"),
                           _dividend("y_div", "YYY", "2023-06-05")]})
    run(data_dir, api, clock, start=D(2023, 6, 1), end=D(2024, 1, 31), reconcile_cycle_runs=0)
    api.actions["name_changes"] += [_rename("r0", "YYY", "CCC", "2024-03-05")
                                    | {"ex_date": "2023-06-15"}]
    report = run(data_dir, api, clock, start=D(2023, 6, 1), end=D(2024, 3, 7),
                 reconcile_cycle_runs=0)
    actions = pl.read_parquet(Store(data_dir).file_path("corporate_actions.parquet"))
    assert sorted(actions.filter((pl.col("symbol") == "CCC")
                                 & (pl.col("action_type") != "name_change"))["id"]) == [
        "x_aold@CCC"]
    assert not [w for w in report.warnings if "left out" in w]


def test_a_ticker_taken_by_another_company_drops_the_copies_made_for_its_last_holder(
        data_dir, clock):
    """The first fetch stores AOLD's dividend as CCC's (AOLD became CCC). Then AOLD's
    company leaves CCC (as XOUT) and COLD's company takes it: a fetch that ends before the
    swap is in effect changes nothing; one after it follows CCC's new chain, and CCC keeps
    COLD's dividend only."""
    bars = make_bars(SYMBOLS, D(2024, 1, 2), D(2024, 3, 28))
    api = SymbolFilteredAlpaca(bars, actions={
        "name_changes": [_rename("r3", "AOLD", "CCC", "2024-01-08")],
        "cash_dividends": [_dividend("x_aold", "AOLD", "2024-01-04")]})
    run(data_dir, api, clock, end=D(2024, 2, 29), reconcile_cycle_runs=0)

    def ccc():
        actions = pl.read_parquet(Store(data_dir).file_path("corporate_actions.parquet"))
        return sorted(actions.filter((pl.col("symbol") == "CCC")
                                     & (pl.col("action_type") != "name_change"))["id"])

    assert ccc() == ["x_aold@CCC"]
    api.actions["name_changes"] += [_rename("r4", "CCC", "XOUT", "2024-03-04"),
                                    _rename("r5", "COLD", "CCC", "2024-03-05")]
    api.actions["cash_dividends"] += [_dividend("c_cold", "COLD", "2024-01-15")]
    run(data_dir, api, clock, end=D(2024, 3, 1), reconcile_cycle_runs=0)
    assert ccc() == ["x_aold@CCC"]  # the swap is announced, not yet in effect
    run(data_dir, api, clock, end=D(2024, 3, 7), reconcile_cycle_runs=0)
    assert ccc() == ["c_cold@CCC"]
