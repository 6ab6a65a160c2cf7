"""Out-of-core builds (`aurora.features.outofcore`): the scan of whole symbols adjusts
exactly as the whole history does, a build out of core equals the one-piece build, and a
failure leaves neither a version nor a part behind."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from aurora.adjustments import point_in_time
from aurora.atomic import atomic_write_parquet
from aurora.config import AuroraConfig, BuildConfig, ComputeConfig
from aurora.errors import DataValidationError
from aurora.features.builder import build_features
from aurora.features.exchange import Exchange
from aurora.features.gates import run_gates
from aurora.features.gatestats import combine, summarize
from aurora.features.outofcore import read_adjusted, scan_history
from aurora.features.panel import PanelInfo, shares_table
from aurora.store import Store
from aurora.store.datasets import read_features
from aurora_testbed.synthetic import generate_market

from .conftest import assert_features_close, random_fundamentals, random_panel
from .test_build import _seed

NAMES = ["AAPL", "KO", "MSFT", "T", "XOM", "S001", "S002"]
MARKET = generate_market(NAMES, dt.date(2016, 1, 4), dt.date(2019, 12, 31), seed=5)
SPIN_OFF = pl.DataFrame({  # AAPL spins off shares of KO, valued at KO's close that day
    "id": ["spin"], "action_type": ["spin_off"], "symbol": ["AAPL"],
    "ex_date": [dt.date(2018, 6, 5)], "process_date": [dt.date(2018, 6, 5)],
    "old_rate": [4.0], "new_rate": [1.0], "target_symbol": ["KO"]})
ACTIONS = pl.concat([MARKET.corporate_actions, SPIN_OFF], how="diagonal_relaxed")
CAPS = pl.DataFrame({"symbol": NAMES * 2, "as_of": [dt.date(2016, 3, 1)] * 7
                     + [dt.date(2018, 2, 10)] * 7,
                     "market_cap": [float(2e9 * (i + 1)) for i in range(14)]})


@pytest.fixture(scope="module", params=["one file", "year parts"])
def raw_files(request, tmp_path_factory) -> list[Path]:
    """The bars as a version holds them: one file sorted by (symbol, date), as written
    before datasets, or a part per year, each sorted so."""
    root = tmp_path_factory.mktemp("raw")
    bars = MARKET.bars.sort("symbol", "date")
    if request.param == "one file":
        bars.write_parquet(root / "prices.parquet")
        return [root / "prices.parquet"]
    paths = []
    for year in bars["date"].dt.year().unique().sort().to_list():
        paths.append(root / f"year={year}.parquet")
        bars.filter(pl.col("date").dt.year() == year).write_parquet(paths[-1])
    return paths


@pytest.mark.parametrize("batch_rows", [97, 1000, 1_000_000])
def test_the_scan_adjusts_and_counts_as_the_whole_history_does(raw_files, batch_rows,
                                                                tmp_path):
    """Batches that cut symbols anywhere (97 rows) change nothing: the adjusted bars of any
    date range are those of `point_in_time` over the whole history, bit for bit, and so
    are the shares from market caps, whether the bars are one file or a part per year."""
    assert ACTIONS.filter(pl.col("action_type") == "cash_dividend").height > 20
    seen: list[tuple[int, int]] = []
    history = scan_history(raw_files, Exchange.open(tmp_path), ACTIONS, CAPS,
                           batch_rows=batch_rows, progress=lambda *p: seen.append(p))
    assert seen[-1] == (MARKET.bars.height, MARKET.bars.height)  # every bar read, counted
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    whole = point_in_time(MARKET.bars.sort("symbol", "date"), ACTIONS)
    for start, end in ((dt.date(2016, 1, 4), dt.date(2019, 12, 31)),
                       (dt.date(2017, 11, 20), dt.date(2018, 7, 3))):
        got = read_adjusted(history.exchange, start, end, history.cumulative)
        assert got.equals(whole.filter(pl.col("date").is_between(start, end)))
    want = shares_table(CAPS, whole, ACTIONS, PanelInfo())
    assert want is not None and history.shares is not None
    assert history.shares.sort("symbol", "as_of").equals(want.sort("symbol", "as_of"))
    spans = whole.group_by("symbol").agg(first=pl.col("date").min(),
                                         last=pl.col("date").max(), rows=pl.len())
    assert history.spans.sort("symbol").equals(spans.sort("symbol"))
    assert history.days.to_list() == sorted(whole["date"].unique().to_list())


def test_a_file_not_sorted_by_symbol_is_refused(tmp_path):
    path = tmp_path / "prices.parquet"
    MARKET.bars.sort("date", "symbol").write_parquet(path)
    with pytest.raises(DataValidationError, match=r"prices.parquet: bars are not sorted"):
        scan_history([path], Exchange.open(tmp_path), None, None, batch_rows=50)


def test_summaries_of_parts_judge_as_the_whole_frame(panel):
    from aurora.features.compute import compute_features

    frame = compute_features(panel, sectors=None)
    years = [frame.filter(pl.col("date").dt.year() == y)
             for y in frame["date"].dt.year().unique().sort()]
    parts = combine([summarize(p) for p in years])
    whole = summarize(frame)
    assert parts.height == whole.height == frame.height
    assert parts.by_symbol.equals(whole.by_symbol)
    assert parts.nulls_by_date.equals(whole.nulls_by_date)
    for threshold in (0.0, 0.05):  # failing and passing
        universe = sorted(panel["symbol"].unique())
        a = run_gates(parts, universe=universe, max_missing_fraction=threshold)
        b = run_gates(frame, universe=universe, max_missing_fraction=threshold)
        assert a.to_json() == b.to_json()


def test_a_frame_of_parts_one_year_after_another_is_summarized_as_the_whole():
    """An incremental build's frame (the kept parts, then the new rows: several chunks,
    years in order) is summarized a year at a time; the summary is the whole frame's."""
    from aurora.features.compute import compute_features

    from .conftest import random_panel

    frame = compute_features(random_panel(n_sessions=800, seed=5, missing=0.02), sectors=None)
    chunked = pl.concat([frame.filter(pl.col("date").dt.year() == y)
                         for y in frame["date"].dt.year().unique().sort()], rechunk=False)
    assert chunked.n_chunks() > 1
    whole, parts = summarize(frame), summarize(chunked)
    assert parts.height == whole.height
    for table in ("dispersion", "nulls_by_date", "by_symbol"):
        assert getattr(parts, table).equals(getattr(whole, table)), table
    twice = pl.concat([chunked, chunked.tail(3)], rechunk=False)  # a duplicated key
    assert summarize(twice).duplicates == summarize(twice.rechunk()).duplicates is not None


def _raw_store(root: Path) -> Store:
    store = Store(root)
    _seed(store, MARKET.bars.sort("symbol", "date"), CAPS)
    with store.transaction("actions", base=store.current_version()) as txn:
        atomic_write_parquet(txn.path("corporate_actions.parquet"), ACTIONS)
    return store


def test_an_out_of_core_build_equals_the_one_piece_build(tmp_path):
    whole = _raw_store(tmp_path / "whole")
    build_features(whole, AuroraConfig(data_dir=whole.root))
    store = _raw_store(tmp_path / "ooc")
    config = AuroraConfig(data_dir=store.root, compute=ComputeConfig(out_of_core=True,
                                                                      block_months=6))
    result = build_features(store, config)
    assert result.gates.passed
    assert_features_close(read_features(whole), read_features(store))
    assert store.verify() == []
    meta = json.loads(store.verified_path("features.meta.json").read_text())
    assert meta["build"]["out_of_core"] and meta["build"]["block_months"] == 6
    assert meta["prices_digest"] is None  # never computed from a tail
    assert meta["row_count"] == read_features(store).height
    assert ("out of core: one task per year in pieces of 6 months, computed on in process, "
            "exchange state/scratch") in result.summary_lines()
    again = build_features(store, config)  # out of core: never incremental
    assert again.meta["build"]["reason"] == "builds are out of core (compute.out_of_core)"
    assert read_features(store).equals(read_features(Store(store.root), result.version))


def test_a_failed_gate_publishes_nothing_and_leaves_no_part(tmp_path):
    store = Store(tmp_path / "data")
    prices = random_panel(n_sessions=400, seed=8)
    _seed(store, prices, random_fundamentals(prices))
    before = store.current_version()
    config = AuroraConfig(data_dir=store.root, compute=ComputeConfig(out_of_core=True),
                          build=BuildConfig(min_dispersion=1e6))
    with pytest.raises(DataValidationError, match="gate dispersion failed"):
        build_features(store, config, lookahead=False)
    assert store.current_version() == before
    assert list((store.state_dir / "scratch").iterdir()) == []


def test_parts_and_scratch_are_owner_only_and_a_universe_without_bars_is_named(tmp_path):
    import os
    import stat

    from aurora.store.datasets import dataset_parts

    store = _raw_store(tmp_path / "data")
    config = AuroraConfig(data_dir=store.root, compute=ComputeConfig(out_of_core=True))
    old = os.umask(0)
    try:
        build_features(store, config, lookahead=False)
    finally:
        os.umask(old)
    parts = dataset_parts(store.manifest(), "features")
    assert sorted(parts) == [2017, 2018, 2019]  # 2016 is all look-back warm-up
    for name in parts.values():
        assert stat.S_IMODE((store.latest / name).stat().st_mode) == 0o400
    assert stat.S_IMODE((store.state_dir / "scratch").stat().st_mode) == 0o700
    assert list((store.state_dir / "scratch").iterdir()) == []
    with pytest.raises(DataValidationError, match=r"no bars of the 2 universe symbol\(s\)"):
        build_features(store, config, universe=["NOPE", "NADA"])


def test_rows_on_a_day_that_is_not_a_session_fail_the_session_gate():
    from aurora.features.gates import gate_sessions

    frame = pl.DataFrame({"date": [dt.date(2024, 1, 2), dt.date(2024, 1, 6),
                                   dt.date(2024, 1, 8)], "symbol": ["A"] * 3,
                          "f_x": [1.0, 2.0, 3.0]})
    result = gate_sessions(frame)
    assert not result.passed and "1 date(s) with rows are not sessions: 2024-01-06" \
        in result.message


@pytest.mark.parametrize("bad", ["s3://key:secret@bucket/x", "s3://bucket/x?token=secret",
                                 "/not/a/url", "s3://bucket /x"])
def test_an_exchange_is_a_url_and_a_bad_one_is_never_echoed(bad):
    from aurora.config import load_config
    from aurora.errors import ConfigError

    with pytest.raises(ConfigError, match=r"compute\.exchange: must be a URL such as "
                                          r"s3://bucket/prefix") as err:
        load_config(env={"AURORA_COMPUTE__EXCHANGE": bad})
    assert "secret" not in str(err.value) and bad not in str(err.value)
    assert ComputeConfig(exchange=" s3://bucket/prefix ").exchange == "s3://bucket/prefix"
    assert ComputeConfig(exchange="").exchange is None


def test_a_stored_summary_gives_back_the_years_before_a_cut():
    """What an incremental build keeps of the last build's summary (`summary_table`, read
    back by `summary_of_table` up to a year), combined with the later years' summary, is
    the whole frame's summary."""
    from aurora.features.compute import compute_features
    from aurora.features.gatestats import summary_of_table, summary_table

    from .conftest import random_panel

    frame = compute_features(random_panel(n_sessions=800, seed=5, missing=0.02), sectors=None)
    whole = summarize(frame)
    years = frame["date"].dt.year().unique().sort().to_list()
    assert len(years) >= 3
    table = summary_table(whole)
    for cut in years[1:]:
        after = summarize(frame.filter(pl.col("date").dt.year() >= cut))
        before = summary_of_table(table, cut, after)
        both = combine([before, after])
        assert both.height == whole.height and both.columns == whole.columns
        for name in ("dispersion", "nulls_by_date", "by_symbol_year", "by_symbol"):
            assert getattr(both, name).equals(getattr(whole, name)), (cut, name)
    # a table of other integer types is read back with the summary's own
    wide = table.with_columns(pl.col("rows").cast(pl.Int64))
    assert summary_of_table(wide, years[1], whole).nulls_by_date.equals(
        summary_of_table(table, years[1], whole).nulls_by_date)
    dropped = next(c for c in table.columns if c.startswith("dispersion:"))
    with pytest.raises(ValueError, match=f"stored summary has no {dropped}"):
        summary_of_table(table.drop(dropped), years[1], whole)
