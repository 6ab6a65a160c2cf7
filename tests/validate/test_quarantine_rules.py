"""Validation rules behind the quarantine: ends of life (renames, the `ended` hook, released
stale symbols), spin-offs as explained moves, and how `validate_store` reads a version's
quarantine record (listing, accepting, malformed files)."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from aurora.atomic import atomic_write_bytes, atomic_write_parquet
from aurora.config import AuroraConfig, ValidationConfig
from aurora.quarantine import (
    Problem,
    QuarantineEntry,
    QuarantineRecord,
    read_quarantine,
    release_symbol,
    write_quarantine,
)
from aurora.store import Store, UniverseRecord
from aurora.validation import validate_prices, validate_store

TODAY = dt.date(2024, 12, 31)
ACTION_SCHEMA = {"id": pl.String, "action_type": pl.String, "symbol": pl.String,
                 "old_symbol": pl.String, "ex_date": pl.Date, "old_rate": pl.Float64,
                 "new_rate": pl.Float64, "target_symbol": pl.String}


def actions(*rows: dict) -> pl.DataFrame:
    return pl.DataFrame([dict.fromkeys(ACTION_SCHEMA) | r for r in rows], schema=ACTION_SCHEMA)


def panel(bars, zigzag, n: int = 30) -> pl.DataFrame:
    return pl.concat([bars("AAA", zigzag(n)), bars("BBB", zigzag(n, 50.0))])


def checks_of(report, symbol: str) -> list[tuple[str, str]]:
    return [(f.check, f.severity) for f in report.findings if f.symbol == symbol]


def scaled_from(frame: pl.DataFrame, symbol: str, when: dt.date, factor: float) -> pl.DataFrame:
    hit = (pl.col("symbol") == symbol) & (pl.col("date") >= when)
    return frame.with_columns([pl.when(hit).then(pl.col(c) * factor).otherwise(pl.col(c))
                               for c in ("open", "high", "low", "close")])


# -- ends of life -------------------------------------------------------------------------
def test_a_rename_ends_the_old_symbols_history(bars, zigzag):
    frame = panel(bars, zigzag)
    dates = sorted(frame["date"].unique())
    stopped = frame.filter((pl.col("symbol") != "BBB") | (pl.col("date") < dates[20]))
    plain = validate_prices(stopped, universe=["AAA", "BBB"], today=TODAY)
    assert ("stale_symbol", "error") in checks_of(plain, "BBB")
    renamed = actions({"id": "n1", "action_type": "name_change", "symbol": "NEWB",
                       "old_symbol": "BBB", "ex_date": dates[20]})
    report = validate_prices(stopped, universe=["AAA", "BBB"], corporate_actions=renamed,
                             today=TODAY)
    assert report.ok and checks_of(report, "BBB") == []


def test_the_ended_hook_ends_a_delisted_symbol_unless_it_trades_again(bars, zigzag):
    frame = panel(bars, zigzag)
    dates = sorted(frame["date"].unique())
    stopped = frame.filter((pl.col("symbol") != "BBB") | (pl.col("date") < dates[20]))
    # the assets endpoint says BBB became inactive after its last bar
    report = validate_prices(stopped, universe=["AAA", "BBB"], today=TODAY,
                             ended={"BBB": dates[19]})
    assert report.ok and checks_of(report, "BBB") == []
    # an end before sessions it did miss: those before the end are still reported
    early = stopped.filter((pl.col("symbol") != "BBB") | (pl.col("date") < dates[17]))
    report = validate_prices(early, universe=["AAA", "BBB"], today=TODAY,
                             ended={"BBB": dates[19]})
    [gap] = [f for f in report.findings if f.symbol == "BBB"]
    assert (gap.check, gap.dates) == ("missing_sessions", tuple(dates[17:20]))
    # a ticker with bars after its recorded end (reused) is held to the whole panel
    report = validate_prices(early, universe=["AAA", "BBB"], today=TODAY,
                             ended={"BBB": dates[10]})
    assert ("stale_symbol", "error") in checks_of(report, "BBB")


# -- spin-offs ----------------------------------------------------------------------------
def spin(frame: pl.DataFrame, when: dt.date) -> pl.DataFrame:
    return actions({"id": "x1", "action_type": "spin_off", "symbol": "AAA", "ex_date": when,
                    "old_rate": 2.0, "new_rate": 1.0, "target_symbol": "NEWCO"})


def test_a_spin_off_explains_the_parents_drop(bars, zigzag):
    frame = panel(bars, zigzag)
    when = sorted(frame["date"].unique())[20]
    dropped = scaled_from(frame, "AAA", when, 0.3)  # -70 %
    before = validate_prices(dropped, universe=["AAA", "BBB"], today=TODAY)
    assert ("large_move", "error") in checks_of(before, "AAA")
    # NEWCO's bars are not in the panel: a drop on a spin-off's ex-date is explained
    report = validate_prices(dropped, universe=["AAA", "BBB"], today=TODAY,
                             corporate_actions=spin(frame, when))
    [move] = [f for f in report.findings if f.symbol == "AAA"]
    assert (move.check, move.severity, move.dates) == ("explained_move", "warning", (when,))
    assert "spin_off of NEWCO (1.0 per 2.0)" in move.message
    assert "value of the spun-off shares is unknown" in move.message
    # a rise on that date is not something a spin-off does
    risen = scaled_from(frame, "AAA", when, 3.0)
    report = validate_prices(risen, universe=["AAA", "BBB"], today=TODAY,
                             corporate_actions=spin(frame, when))
    assert ("large_move", "error") in checks_of(report, "AAA")


def test_a_spin_off_with_the_new_company_in_the_panel_is_valued(bars, zigzag):
    frame = panel(bars, zigzag)
    when = sorted(frame["date"].unique())[20]
    parent = frame.filter((pl.col("symbol") == "AAA") & (pl.col("date") < when))["close"][-1]
    dropped = scaled_from(frame, "AAA", when, 0.3)
    new_close = dropped.filter((pl.col("symbol") == "AAA") & (pl.col("date") == when))[
        "close"].item()

    def newco(value: float) -> pl.DataFrame:
        # 1 NEWCO per 2 AAA worth `value` of the parent's lost price on the ex-date
        return bars("NEWCO", [2 * value] * 10, start=when)

    worth = pl.concat([dropped, newco(parent - new_close)])
    report = validate_prices(worth, universe=["AAA", "BBB", "NEWCO"], today=TODAY,
                             corporate_actions=spin(frame, when))
    [move] = [f for f in report.findings if f.symbol == "AAA"]
    assert move.check == "explained_move" and "+0.0% after adjusting" in move.message
    # the spun-off shares are worth far less than the drop: not explained
    cheap = pl.concat([dropped, newco(0.01 * parent)])
    report = validate_prices(cheap, universe=["AAA", "BBB", "NEWCO"], today=TODAY,
                             corporate_actions=spin(frame, when))
    [move] = [f for f in report.findings if f.symbol == "AAA"]
    assert move.check == "large_move" and "not explained by spin_off of NEWCO" in move.message


# -- validate_store and the record ---------------------------------------------------------
def entry(symbol: str, check: str, dates: tuple[dt.date, ...]) -> QuarantineEntry:
    return QuarantineEntry(symbol, (Problem(check, dates, f"{check} planted"),),
                           "2024-12-01T00:00:00+00:00")


def publish(store: Store, prices: pl.DataFrame, record: QuarantineRecord | None = None,
            raw: bytes | None = None) -> None:
    with store.transaction("fetch", base=store.current_version(),
                           universe=UniverseRecord(symbols=("AAA", "BBB"), source="test")) as txn:
        atomic_write_parquet(txn.path("prices.parquet"), prices)
        if record is not None:
            write_quarantine(txn, record)
        if raw is not None:
            atomic_write_bytes(txn.path("quarantine.json"), raw)


def config(data_dir, **severities) -> AuroraConfig:
    return AuroraConfig(data_dir=data_dir, validation=ValidationConfig(severities=severities))


def test_validate_store_lists_quarantined_symbols_until_released(data_dir, bars, zigzag):
    frame = panel(bars, zigzag)
    dates = sorted(frame["date"].unique())
    stopped = frame.filter((pl.col("symbol") != "BBB") | (pl.col("date") < dates[20]))
    store = Store(data_dir)
    publish(store, stopped, QuarantineRecord({"BBB": entry("BBB", "duplicates",
                                                            (dates[21],))}))
    report = validate_store(store, config(data_dir), today=TODAY)
    assert report.ok and report.stats["quarantined"] == ["BBB"]
    listed = [f for f in report.findings if f.check == "quarantined"]
    assert [(f.symbol, f.severity, f.dates) for f in listed] == [("BBB", "warning", (dates[21],))]
    assert f"version {store.current_version()}" in listed[0].message
    stale = [f for f in report.findings if f.check == "stale_symbol"]
    assert [(f.severity, f.message.endswith("(symbol quarantined)")) for f in stale] == [
        ("warning", True)]
    # a team that wants any quarantine to fail `aurora validate` says so
    strict = validate_store(store, config(data_dir, quarantined="error"), today=TODAY)
    assert not strict.ok and [f.check for f in strict.errors] == ["quarantined"]
    ignored = validate_store(store, config(data_dir, quarantined="ignore"), today=TODAY)
    assert ignored.stats["ignored"]["quarantined"] == 1
    assert report.to_dict()["checks"]["quarantined"]["findings"] == 1

    release_symbol(store, "BBB", reason="checked", released_by="tester")
    report = validate_store(store, config(data_dir), today=TODAY)
    assert report.ok and not [f for f in report.findings if f.check == "quarantined"]
    # until the next fetch reads it again its stale bars are excused, then held to account
    [waiting] = [f for f in report.findings if f.check == "stale_symbol"]
    assert waiting.severity == "warning" and "(released;" in waiting.message


def test_a_released_problem_is_accepted_and_a_released_stale_symbol_ends(data_dir, bars,
                                                                         zigzag):
    frame = panel(bars, zigzag)
    dates = sorted(frame["date"].unique())
    jumped = scaled_from(frame, "AAA", dates[10], 1.9)
    stopped = jumped.filter((pl.col("symbol") != "BBB") | (pl.col("date") < dates[20]))
    store = Store(data_dir)
    record = QuarantineRecord({"AAA": entry("AAA", "large_move", (dates[10],)),
                               "BBB": entry("BBB", "stale_symbol", tuple(dates[20:]))})
    publish(store, stopped, record)
    for symbol in ("AAA", "BBB"):
        release_symbol(store, symbol, reason="real", released_by="tester")
    record = read_quarantine(store)
    assert record.ended() == {"BBB": dates[20] - dt.timedelta(days=1)}
    publish(store, stopped, record.refetched(["AAA", "BBB"]))  # as the next fetch would
    report = validate_store(store, config(data_dir), today=TODAY)
    assert report.ok, [f.line() for f in report.errors]
    [move] = [f for f in report.findings if f.check == "large_move"]
    assert move.severity == "warning" and "(accepted: released by tester on " in move.message
    assert not [f for f in report.findings if f.symbol == "BBB"]
    # another jump of AAA is not accepted
    again = scaled_from(stopped, "AAA", dates[25], 0.3)
    publish(store, again, read_quarantine(store))
    report = validate_store(store, config(data_dir), today=TODAY)
    assert [(f.check, f.symbol, f.dates) for f in report.errors] == [
        ("large_move", "AAA", (dates[25],))]


def test_a_malformed_record_is_a_file_schema_finding(data_dir, bars, zigzag):
    store = Store(data_dir)
    doc = {"format": 1, "quarantined": [{"symbol": "../x", "problems": []}]}
    publish(store, panel(bars, zigzag), raw=json.dumps(doc).encode())
    report = validate_store(store, config(data_dir), today=TODAY)
    [bad] = report.errors
    assert bad.check == "file_schema" and bad.message.startswith(
        f"quarantine.json of version {store.current_version()}: quarantined[0].symbol: ")
    with pytest.raises(Exception, match="not a record Aurora writes"):
        read_quarantine(store)
