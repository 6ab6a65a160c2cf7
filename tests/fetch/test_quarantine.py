"""Failures isolated to the symbol: quarantine in the fetch, its record, `aurora quarantine`,
`aurora validate`, releases, ends of life and spin-offs (httpx.MockTransport + fake clock)."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import polars as pl
import pytest
from fetch_fakeapi import KEY, SECRET, FakeAlpaca, bar_time, make_bars

from aurora.cli.main import main
from aurora.config import AlpacaConfig, AuroraConfig, FetchConfig
from aurora.errors import DataValidationError, FetchError
from aurora.fetch import fetch_prices
from aurora.quarantine import read_quarantine
from aurora.store import Store
from aurora.store.bars import read_prices
from aurora.universe import Universe

D = dt.date
SYMBOLS = [f"S{i:02d}" for i in range(20)]  # one symbol is 5%: the default share allowed
FIRST_END, END = D(2024, 2, 15), D(2024, 2, 29)


def config(data_dir, **fetch) -> AuroraConfig:
    return AuroraConfig(
        data_dir=data_dir,
        alpaca=AlpacaConfig(key_id=KEY, secret_key=SECRET, data_url="http://api.test",
                            base_url="http://api.test"),
        fetch=FetchConfig(**{"batch_size": 5, "reconcile_cycle_runs": 0, **fetch}))


def run(data_dir, api, clock, *, end=END, symbols=SYMBOLS, **fetch):
    return fetch_prices(config(data_dir, **fetch),
                        universe=Universe(tuple(symbols), {}, "test universe"),
                        start=D(2024, 1, 2), end=end, progress=None, sleep=clock.sleep,
                        clock=clock.time, transport=api.transport())


def stored(data_dir) -> pl.DataFrame:
    return read_prices(Store(data_dir))


def bar(bars, symbol, day) -> dict:
    return next(b for b in bars[symbol] if b["t"] == bar_time(day))


def plant_duplicate(bars, symbol, day, *, before=False, **values) -> None:
    """A second bar for (symbol, day) with `values` changed, after (or before) the real one."""
    real = bar(bars, symbol, day)
    at = bars[symbol].index(real)
    bars[symbol].insert(at if before else at + 1, {**real, **values})


def scale_from(bars, symbol, day, factor) -> None:
    """Every price of `symbol` from `day` on multiplied by `factor` (a jump on `day`)."""
    for b in bars[symbol]:
        if b["t"] >= bar_time(day):
            for key in ("o", "h", "l", "c", "vw"):
                b[key] *= factor


def last_dates(prices: pl.DataFrame) -> dict[str, dt.date]:
    return dict(prices.group_by("symbol").agg(pl.col("date").max()).iter_rows())


def validation_findings(store: Store, check: str) -> list[tuple]:
    doc = json.loads(store.file_path("validation.json").read_text())
    return [(f["symbol"], f["severity"], f["dates"]) for f in doc["findings"]
            if f["check"] == check]


# -- the quarantine in the fetch ----------------------------------------------------------
def test_a_conflicting_duplicate_quarantines_its_symbol_and_publishes_the_rest(data_dir, clock):
    bars = make_bars(SYMBOLS, D(2024, 1, 2), D(2024, 3, 28))
    api = FakeAlpaca(bars)
    first = run(data_dir, api, clock, end=FIRST_END)
    before = stored(data_dir)
    plant_duplicate(bars, "S07", D(2024, 2, 27), c=bar(bars, "S07", D(2024, 2, 27))["c"] + 3)
    report = run(data_dir, api, clock)
    store = Store(data_dir)
    assert report.version == store.current_version() != first.version
    prices = stored(data_dir)
    # the rest of S07's batch (S05..S09) and of the universe is published through the end;
    # S07's stored bars are kept exactly as they were
    assert last_dates(prices) == {**dict.fromkeys(SYMBOLS, END), "S07": FIRST_END}
    assert prices.filter(pl.col("symbol") == "S07").equals(
        before.filter(pl.col("symbol") == "S07"))
    record = read_quarantine(store)
    assert record.symbols() == ["S07"]
    entry = record.quarantined["S07"]
    assert (entry.check, entry.first_date, entry.last_date) == (
        "duplicates", D(2024, 2, 27), D(2024, 2, 27))
    assert "conflicting bars" in entry.message and entry.version == report.version
    [written] = json.loads(store.file_path("quarantine.json").read_text())["quarantined"]
    assert {k: written[k] for k in ("symbol", "check", "first_date", "last_date")} == {
        "symbol": "S07", "check": "duplicates", "first_date": "2024-02-27",
        "last_date": "2024-02-27"}
    assert written["quarantined_at"] and written["message"] == entry.message
    # the summary, the validation report and the manifest say so
    summary = "\n".join(report.summary_lines())
    assert "quarantined S07: duplicates on 2024-02-27" in summary
    assert validation_findings(store, "quarantined") == [("S07", "warning", ["2024-02-27"])]
    # its bars stop 10 sessions early: that is the quarantine's doing, not an error
    assert [s for s, severity, _ in validation_findings(store, "stale_symbol")] == ["S07"]
    assert all(sev == "warning" for _, sev, _ in validation_findings(store, "stale_symbol"))
    assert store.manifest().params["quarantined"] == {"S07": "duplicates on 2024-02-27"}
    assert report.restated == {}  # bars that left their batch are not a restatement


@pytest.mark.parametrize("zero_first", [True, False])
def test_an_all_zero_twin_resolves_to_the_other_bar_with_a_warning(data_dir, clock,
                                                                   zero_first):
    bars = make_bars(SYMBOLS, D(2024, 1, 2), END)
    real = bar(bars, "S03", D(2024, 2, 6))["c"]
    plant_duplicate(bars, "S03", D(2024, 2, 6), before=zero_first,
                    o=0, h=0, l=0, c=0, v=0, n=0, vw=0)
    report = run(data_dir, FakeAlpaca(bars), clock)
    prices = stored(data_dir)
    row = prices.filter((pl.col("symbol") == "S03") & (pl.col("date") == D(2024, 2, 6)))
    assert row.height == 1 and row["close"].item() == real > 0
    assert prices.height == 20 * 41
    assert any("S03" in w and "all zeros on 2024-02-06" in w for w in report.warnings)
    assert read_quarantine(Store(data_dir)).empty
    assert Store(data_dir).file_path("quarantine.json") is None


def test_an_unexplained_jump_quarantines_one_new_symbol(data_dir, clock):
    bars = make_bars(SYMBOLS, D(2024, 1, 2), END)
    scale_from(bars, "S05", D(2024, 2, 20), 1.8)  # +80 %, no corporate action
    report = run(data_dir, FakeAlpaca(bars), clock)
    store = Store(data_dir)
    prices = stored(data_dir)
    assert sorted(prices["symbol"].unique()) == [s for s in SYMBOLS if s != "S05"]
    entry = read_quarantine(store).quarantined["S05"]
    assert (entry.check, entry.dates) == ("large_move", (D(2024, 2, 20),))
    assert "beyond +/-50%; no corporate action explains it" in entry.message
    assert any(w.startswith("[warning] quarantined S05: large_move on 2024-02-20")
               for w in report.warnings)
    # a symbol without any bar is a quarantined symbol here, not a missing one
    assert validation_findings(store, "missing_symbols") == [("S05", "warning", [])]


@pytest.mark.parametrize("share", [0.05, 0.0])
def test_too_many_quarantined_symbols_fail_the_fetch_as_before(data_dir, clock, share):
    bars = make_bars(SYMBOLS, D(2024, 1, 2), END)
    plant_duplicate(bars, "S02", D(2024, 2, 6), c=bar(bars, "S02", D(2024, 2, 6))["c"] + 1)
    if share:
        scale_from(bars, "S09", D(2024, 2, 20), 0.3)
    with pytest.raises(DataValidationError) as info:
        run(data_dir, FakeAlpaca(bars), clock, max_quarantine_share=share)
    held = ["S02", "S09"] if share else ["S02"]
    message = str(info.value)
    assert message.startswith("fetched prices failed validation with ")
    assert (f"{len(held)} of 20 symbols ({len(held) / 20:.1%}) would be quarantined, more "
            f"than fetch.max_quarantine_share = {share:.1%}: {', '.join(held)}") in message
    assert "nothing was published" in message and Store(data_dir).current_version() is None
    assert list(info.value.missing_symbols) == held
    report = json.loads((data_dir / "state" / "fetch-validation-report.json").read_text())
    errors = {(f["check"], f["symbol"], tuple(f["dates"])) for f in report["findings"]
              if f["severity"] == "error"}
    assert ("duplicates", "S02", ("2024-02-06",)) in errors
    if share:
        assert ("large_move", "S09", ("2024-02-20",)) in errors


# -- the record over time: list, validate, release, refetch, fixed at the source ----------
def test_list_validate_release_then_the_next_fetch_reads_it_in_full(data_dir, clock, capsys):
    bars = make_bars(SYMBOLS, D(2024, 1, 2), D(2024, 3, 28))
    api = FakeAlpaca(bars)
    run(data_dir, api, clock, end=FIRST_END)
    day = D(2024, 2, 27)
    first_bar = bar(bars, "S07", day)
    plant_duplicate(bars, "S07", day, c=first_bar["c"] + 3)
    run(data_dir, api, clock)
    where = ["--data-dir", str(data_dir)]
    capsys.readouterr()

    assert main(["quarantine", "list", *where]) == 0
    out = capsys.readouterr().out
    assert "1 symbol(s) quarantined" in out and "S07: duplicates on 2024-02-27" in out
    assert main(["quarantine", "list", "--json", *where]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["version"] == Store(data_dir).current_version()
    assert [(e["symbol"], e["check"], e["first_date"], e["version"]) for e in
            listed["quarantined"]] == [("S07", "duplicates", "2024-02-27", listed["version"])]
    assert main(["validate", *where]) == 0  # listed as a warning until released
    out = capsys.readouterr().out
    assert "quarantined" in out and "S07" in out
    verdict = json.loads((data_dir / "state" / "validation-report.json").read_text())
    assert verdict["ok"] and [f["symbol"] for f in verdict["findings"]
                              if f["check"] == "quarantined"] == ["S07"]

    assert main(["quarantine", "release", "S07", "--reason", "merger day bar checked",
                 *where]) == 0
    assert "released S07" in capsys.readouterr().out
    store = Store(data_dir)
    released = store.manifest()
    assert released.stage == "release" and released.params["released"] == "S07"
    record = read_quarantine(store)
    assert record.quarantined == {} and [r.reason for r in record.released] == [
        "merger day bar checked"]
    assert record.released[0].refetch
    assert main(["validate", *where]) == 0
    verdict = json.loads((data_dir / "state" / "validation-report.json").read_text())
    assert not [f for f in verdict["findings"] if f["check"] == "quarantined"]

    # the server still sends both bars: the release accepted that date, the first one wins,
    # and S07's whole history is read again
    api.log.clear()
    report = run(data_dir, api, clock, end=D(2024, 3, 7))
    full = [r["symbols"] for r in api.bar_requests() if r["start"] == "2024-01-02T05:00:00Z"]
    assert full == ["S07"]
    prices = stored(data_dir)
    assert last_dates(prices) == dict.fromkeys(SYMBOLS, D(2024, 3, 7))
    kept = prices.filter((pl.col("symbol") == "S07") & (pl.col("date") == day))
    assert kept["close"].to_list() == [first_bar["c"]]
    assert any("S07: conflicting duplicate bars on 2024-02-27: the first bar served is kept"
               in w for w in report.warnings)
    record = read_quarantine(Store(data_dir))
    assert record.quarantined == {} and not record.released[0].refetch
    # the next fetch reads it incrementally again
    api.log.clear()
    run(data_dir, api, clock, end=D(2024, 3, 14))
    assert {r["start"] for r in api.bar_requests()} == {"2024-02-29T05:00:00Z"}


def test_releasing_a_symbol_that_is_not_quarantined_is_one_line(data_dir, clock, capsys):
    run(data_dir, FakeAlpaca(make_bars(SYMBOLS, D(2024, 1, 2), END)), clock)
    before = Store(data_dir).current_version()
    assert main(["quarantine", "release", "S01", "--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: S01 is not quarantined in version ") and "none" in err
    assert len(err.strip().splitlines()) == 1 and Store(data_dir).current_version() == before


def test_a_quarantine_ends_when_the_server_fixes_the_bars(data_dir, clock):
    bars = make_bars(SYMBOLS, D(2024, 1, 2), D(2024, 3, 28))
    api = FakeAlpaca(bars)
    run(data_dir, api, clock, end=FIRST_END)
    clean = [dict(b) for b in bars["S07"]]
    plant_duplicate(bars, "S07", D(2024, 2, 27), c=bar(bars, "S07", D(2024, 2, 27))["c"] + 3)
    run(data_dir, api, clock)
    # an unchanged server: the quarantine holds, nothing new to publish
    again = run(data_dir, api, clock)
    assert again.unchanged and read_quarantine(Store(data_dir)).symbols() == ["S07"]
    bars["S07"] = clean  # the vendor corrects its data
    report = run(data_dir, api, clock)
    assert "quarantine of S07 ended: its whole history was read again and validates" in (
        report.warnings)
    assert last_dates(stored(data_dir)) == dict.fromkeys(SYMBOLS, END)
    assert Store(data_dir).file_path("quarantine.json") is None


def test_a_resumed_run_quarantines_the_same_symbol(data_dir, clock):
    """The checkpoint keeps the bars as served, so a run resumed after another batch failed
    decides the same as an uninterrupted one."""
    bars = make_bars(SYMBOLS, D(2024, 1, 2), END)
    plant_duplicate(bars, "S07", D(2024, 2, 27), c=bar(bars, "S07", D(2024, 2, 27))["c"] + 3)
    api = FakeAlpaca(bars)
    refused: list[str] = []

    def once(request: httpx.Request) -> httpx.Response:
        symbols = request.url.params.get("symbols", "")
        if "S19" in symbols.split(",") and not refused:
            refused.append(symbols)
            return httpx.Response(404, json={"message": "not found"})  # final, no retry
        return api(request)

    with pytest.raises(FetchError, match="1 of 5 request groups failed"):
        fetch_prices(config(data_dir), universe=Universe(tuple(SYMBOLS), {}, "test"),
                     start=D(2024, 1, 2), end=END, progress=None, sleep=clock.sleep,
                     clock=clock.time, transport=httpx.MockTransport(once))
    report = run(data_dir, api, clock)
    assert report.batches_resumed == 3  # S00..S14 from their checkpoints, S07's batch too
    assert read_quarantine(Store(data_dir)).symbols() == ["S07"]


# -- ends of life -------------------------------------------------------------------------
def test_a_renamed_symbol_ends_its_history_without_stale_symbol(data_dir, clock):
    bars = make_bars(SYMBOLS, D(2024, 1, 2), END)
    bars["S19"] = [b for b in bars["S19"] if b["t"] < bar_time(D(2024, 2, 16))]
    api = FakeAlpaca(bars, actions={"name_changes": [
        {"id": "n1", "old_symbol": "S19", "old_cusip": "A", "new_symbol": "NEWS",
         "new_cusip": "B", "process_date": "2024-02-16"}]})
    report = run(data_dir, api, clock)
    store = Store(data_dir)
    assert last_dates(stored(data_dir))["S19"] == FIRST_END
    assert read_quarantine(store).empty
    assert validation_findings(store, "stale_symbol") == []
    assert not [w for w in report.warnings if "S19" in w]


# -- spin-offs ----------------------------------------------------------------------------
def test_a_spin_off_explains_the_parents_drop(data_dir, clock):
    bars = make_bars(SYMBOLS, D(2024, 1, 2), END)
    scale_from(bars, "S04", D(2024, 2, 20), 0.35)  # -65 %: most of the company spun off
    api = FakeAlpaca(bars, actions={"spin_offs": [
        {"id": "x1", "source_symbol": "S04", "source_rate": 1, "new_symbol": "SPUN",
         "new_rate": 1, "process_date": "2024-02-20", "ex_date": "2024-02-20"}]})
    report = run(data_dir, api, clock)
    store = Store(data_dir)
    assert read_quarantine(store).empty
    assert last_dates(stored(data_dir))["S04"] == END
    [(symbol, severity, dates)] = validation_findings(store, "explained_move")
    assert (symbol, severity, dates) == ("S04", "warning", ["2024-02-20"])
    assert any("spin_off of SPUN (1.0 per 1.0)" in w for w in report.warnings)
    actions = pl.read_parquet(store.file_path("corporate_actions.parquet"))
    assert actions.select("action_type", "symbol", "target_symbol").row(0) == (
        "spin_off", "S04", "SPUN")
