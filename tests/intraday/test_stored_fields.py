"""Each day's summary stored beside its minute bars: read instead of recomputed, equal to
the computation, dropped when the day's bars are rewritten without it, verified on read."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from aurora.calendar import sessions
from aurora.errors import StoreError
from aurora.intraday.daily import daily_fields, load_daily_fields, summarizer
from aurora.intraday.store import FIELDS_DATASET, intraday_store, stored_days, write_days
from aurora.schemas import INTRADAY_SCHEMA
from aurora_testbed.synthetic import generate_market
from aurora_testbed.synthetic.minutes import minute_bars

DAYS = sessions(dt.date(2023, 3, 1), dt.date(2023, 3, 10))


@pytest.fixture(scope="module")
def minutes() -> pl.DataFrame:
    market = generate_market(["AAA", "BBB", "CCC"], dt.date(2023, 1, 3), DAYS[-1], seed=2)
    daily = market.bars.filter(pl.col("date").is_in(DAYS))
    return minute_bars(daily, 0, extended=True).with_columns(
        date=pl.col("timestamp").dt.convert_time_zone("America/New_York").dt.date()
    ).select(list(INTRADAY_SCHEMA))


def per_day(minutes: pl.DataFrame) -> pl.DataFrame:
    """The fields of each day computed from that day's bars alone, as they are stored."""
    return pl.concat([daily_fields(minutes.filter(pl.col("date") == d)) for d in DAYS]
                     ).sort("symbol", "date")


def _write(root, bars: pl.DataFrame, summarize=None) -> None:
    store = intraday_store(root, "1Min")
    with store.transaction("test", base=store.current_version()) as txn:
        write_days(txn, bars, summarize)


def test_stored_summaries_are_read_and_equal_the_computation(tmp_path, minutes):
    root = tmp_path / "data"
    first, rest = DAYS[:4], DAYS[4:]
    _write(root, minutes.filter(pl.col("date").is_in(first)), summarizer("1Min"))
    _write(root, minutes.filter(pl.col("date").is_in(rest)))  # older writer: no summaries
    store = intraday_store(root, "1Min")
    manifest = store.manifest()
    assert list(stored_days(manifest, fields=True)) == first
    assert list(stored_days(manifest)) == DAYS
    got = load_daily_fields(root, "1Min")
    assert got.equals(per_day(minutes))
    assert load_daily_fields(root, "1Min", start=DAYS[2], end=DAYS[5], symbols=["BBB"]).equals(
        per_day(minutes).filter(pl.col("date").is_between(DAYS[2], DAYS[5])
                                     & (pl.col("symbol") == "BBB")))
    assert summarizer("15Min") is None


def test_rewriting_a_day_without_its_summary_drops_the_old_one(tmp_path, minutes):
    root = tmp_path / "data"
    _write(root, minutes, summarizer("1Min"))
    day = DAYS[1]
    changed = minutes.filter(pl.col("date") == day).with_columns(pl.col("close") * 1.02)
    _write(root, changed)
    summaries = stored_days(intraday_store(root, "1Min").manifest(), fields=True)
    assert day not in summaries and len(summaries) == len(DAYS) - 1
    got = load_daily_fields(root, "1Min", start=day, end=day)
    assert got.equals(daily_fields(changed))


def test_a_corrupted_summary_part_is_refused(tmp_path, minutes):
    root = tmp_path / "data"
    _write(root, minutes, summarizer("1Min"))
    store = intraday_store(root, "1Min")
    name = f"{FIELDS_DATASET}/date={DAYS[0].isoformat()}/part-0.parquet"
    path = store.file_path(name)
    assert path is not None
    path.chmod(0o600)
    daily_fields(minutes.filter(pl.col("date") == DAYS[0])).with_columns(
        pl.col("intraday_rv_5min") * 2).write_parquet(path)
    with pytest.raises(StoreError, match="fields_v1/date=2023-03-01"):
        load_daily_fields(root, "1Min")


def test_days_without_stored_fields_are_read_in_runs_of_consecutive_days():
    from aurora.intraday.daily import DAYS_PER_READ, _runs

    stored = sessions(dt.date(2023, 1, 3), dt.date(2023, 6, 30))
    # the first and the last day only: two reads of one day, not the half year between
    assert _runs([stored[0], stored[-1]], stored) == [[stored[0]], [stored[-1]]]
    runs = _runs(stored[:50], stored)
    assert [len(r) for r in runs] == [DAYS_PER_READ, DAYS_PER_READ, 50 - 2 * DAYS_PER_READ]
    assert _runs([stored[1], stored[2], stored[4]], stored) == [stored[1:3], [stored[4]]]
