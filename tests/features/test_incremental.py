"""Daily incremental builds: equal to a full build to 1e-9 relative on every cell, at
random cut points; a restated bar, a late corporate action or a changed feature set makes
a full build and says why."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aurora.atomic import atomic_write_json, atomic_write_parquet
from aurora.config import AuroraConfig, BuildConfig
from aurora.features.builder import build_features
from aurora.store import Store
from aurora.store.datasets import read_features

from .conftest import random_panel
from .test_build import _seed

PANEL = random_panel(n_sessions=420, seed=3)
DATES = sorted(PANEL["date"].unique().to_list())
# one market cap per symbol, as of a date before any tail: the shares are put on the volume
# basis with the last bar before it, which an incremental build's tail does not hold
CAPS = pl.DataFrame({"symbol": PANEL["symbol"].unique().sort(), "as_of": DATES[50]}).with_columns(
    market_cap=pl.int_range(pl.len()).cast(pl.Float64) * 1e9 + 2e9)


def _actions(rows: list[tuple[str, str, object, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        [{"id": f"a{i}", "action_type": kind, "symbol": sym, "old_symbol": None,
          "ex_date": day, "process_date": day, "old_rate": 1.0 if kind != "cash_dividend"
          else None, "new_rate": 2.0 if kind != "cash_dividend" else None,
          "cash_rate": cash if kind == "cash_dividend" else None}
         for i, (kind, sym, day, cash) in enumerate(rows)],
        schema_overrides={"old_symbol": pl.String, "cash_rate": pl.Float64,
                          "old_rate": pl.Float64, "new_rate": pl.Float64})


def _publish(store: Store, prices: pl.DataFrame, actions: pl.DataFrame | None = None) -> None:
    _seed(store, prices, CAPS)
    if actions is not None:
        with store.transaction("actions", base=store.current_version()) as txn:
            atomic_write_parquet(txn.path("corporate_actions.parquet"), actions)


def _features(store: Store) -> pl.DataFrame:
    return read_features(store)


def _meta(store: Store) -> dict:
    return json.loads(store.verified_path("features.meta.json").read_text())


def _summary(store: Store) -> pl.DataFrame:
    return pl.read_parquet(store.verified_path("features.summary.parquet"))


def _assert_same_summary(a: pl.DataFrame, b: pl.DataFrame) -> None:
    """Equal counts and dates; dispersions to 1e-9 relative (running sums, module doc)."""
    assert a.columns == b.columns
    exact = [c for c in a.columns if not c.startswith("dispersion:")]
    assert a.select(exact).equals(b.select(exact))
    for name in (c for c in a.columns if c.startswith("dispersion:")):
        np.testing.assert_allclose(a[name].to_numpy(), b[name].to_numpy(), rtol=1e-9,
                                   atol=1e-14, err_msg=name)


def _assert_close(a: pl.DataFrame, b: pl.DataFrame) -> None:
    assert a.select("symbol", "date").equals(b.select("symbol", "date"))
    assert a.columns == b.columns
    for name in a.columns[2:]:
        x, y = a[name].to_numpy(), b[name].to_numpy()
        assert np.array_equal(np.isnan(x), np.isnan(y)), name
        both = ~np.isnan(x)
        np.testing.assert_allclose(x[both], y[both], rtol=1e-9, atol=1e-14, err_msg=name)


@settings(max_examples=3, deadline=None)
@given(cut=st.integers(370, 416))
def test_an_incremental_build_equals_a_full_one(tmp_path_factory, cut):
    """Build through a cut, add sessions (with a dividend and a split among them), build
    again: only the new sessions are computed, and every cell equals a full rebuild."""
    data = tmp_path_factory.mktemp("inc") / "data"
    store, config = Store(data), AuroraConfig(data_dir=data)
    early = PANEL.filter(pl.col("date") <= DATES[cut])
    later = [("cash_dividend", "AAA", DATES[-2], 0.4), ("forward_split", "CCC", DATES[-1], 0)]
    _publish(store, early, _actions([("cash_dividend", "BBB", DATES[100], 0.3)]))
    build_features(store, config, lookahead=False)
    _publish(store, PANEL, _actions([("cash_dividend", "BBB", DATES[100], 0.3), *later]))
    result = build_features(store, config, lookahead=False)
    assert result.meta["build"]["mode"] == "incremental", result.meta["build"]
    assert result.meta["build"]["new_sessions"] == len(DATES) - 1 - cut
    assert "incremental:" in "\n".join(result.summary_lines())
    incremental, spans, meta = _features(store), _meta(store)["bar_spans"], _meta(store)
    stored = _summary(store)
    build_features(store, config, lookahead=False, incremental=False)
    # the spans an incremental build widened from the last build's are the whole history's
    assert spans == _meta(store)["bar_spans"]
    # its summary (2020 from the last build's stored one, 2021 recomputed) is the full one's
    for key in ("row_count", "symbol_count", "date_range", "gates"):
        assert meta[key] == _meta(store)[key], key
    _assert_same_summary(stored, _summary(store))
    assert len(spans["symbol"]) == PANEL["symbol"].n_unique()
    assert _meta(store)["build"] == {"mode": "full", "reason": "a full build was asked for",
                                     "new_sessions": incremental["date"].n_unique(),
                                     "computed_on": "in process", "out_of_core": False,
                                     "exchange": None, "block_months": None}
    _assert_close(incremental, _features(store))


def test_a_restated_bar_makes_a_full_build_naming_the_symbol(tmp_path):
    store, config = Store(tmp_path / "data"), AuroraConfig(data_dir=tmp_path / "data")
    _publish(store, PANEL.filter(pl.col("date") <= DATES[390]))
    build_features(store, config, lookahead=False)
    restated = PANEL.with_columns(
        pl.when((pl.col("symbol") == "DDD") & (pl.col("date") == DATES[250]))
        .then(pl.col("close") * 1.01).otherwise(pl.col("close")).alias("close"))
    _publish(store, restated)
    result = build_features(store, config, lookahead=False)
    assert result.meta["build"]["mode"] == "full"
    assert result.meta["build"]["reason"] == f"prices up to {DATES[390]} changed (DDD)"
    assert f"full build: prices up to {DATES[390]} changed (DDD)" in result.summary_lines()


def test_a_late_corporate_action_or_new_features_make_a_full_build(tmp_path):
    data = tmp_path / "data"
    store, config = Store(data), AuroraConfig(data_dir=data)
    _publish(store, PANEL.filter(pl.col("date") <= DATES[390]))
    build_features(store, config, lookahead=False)
    # a dividend reported late, its ex-date long past: earlier adjusted prices change
    _publish(store, PANEL, _actions([("cash_dividend", "EEE", DATES[150], 0.2)]))
    result = build_features(store, config, lookahead=False)
    assert result.meta["build"]["reason"].startswith(f"prices up to {DATES[390]} changed (EEE")
    mine = tmp_path / "mine.toml"
    mine.write_text('[features]\nf_ret_3d = "close / Ref(close, 3) - 1"\n')
    with_mine = AuroraConfig(data_dir=data, build=BuildConfig(features=mine))
    result = build_features(store, with_mine, lookahead=False)
    assert result.meta["build"] == {"mode": "full",
                                    "reason": "the feature set changed (--features)",
                                    "new_sessions": _features(store)["date"].n_unique(),
                                    "computed_on": "in process", "out_of_core": False,
                                    "exchange": None, "block_months": None}


def test_the_prices_digest_sees_values_and_missing_cells_not_row_order():
    from aurora.features.incremental import prices_digest

    through = DATES[200]
    base = prices_digest(PANEL, through)
    assert prices_digest(PANEL.sample(fraction=1.0, shuffle=True, seed=1), through) == base
    later = PANEL.with_columns(pl.when(pl.col("date") > through).then(pl.col("close") * 2)
                               .otherwise(pl.col("close")).alias("close"))
    assert prices_digest(later, through) == base
    first = (pl.col("symbol") == "AAA") & (pl.col("date") == DATES[5])
    shifted = PANEL.with_columns(pl.when(first).then(pl.col("close") + 1e-9)
                                 .otherwise(pl.col("close")).alias("close"))
    assert prices_digest(shifted, through) != base
    missing = PANEL.with_columns(pl.when(first).then(None).otherwise(pl.col("volume"))
                                 .alias("volume"))
    assert prices_digest(missing, through) != base
    renamed = PANEL.with_columns(pl.when(pl.col("symbol") == "AAA").then(pl.lit("AAB"))
                                 .otherwise(pl.col("symbol")).alias("symbol"))
    assert prices_digest(renamed, through) != base
    assert prices_digest(PANEL, DATES[201]) != base


def test_a_symbol_back_after_missing_the_last_sessions_gets_their_rows(tmp_path):
    """A symbol without bars on the last sessions of the earlier build (no trade, a halt)
    has a bar again among the new sessions: its span now covers the sessions it missed, so
    a full build has rows there; the incremental build must have them too."""
    data = tmp_path / "data"
    store, config = Store(data), AuroraConfig(data_dir=data)
    cut = 390
    gap = (pl.col("symbol") == "BBB") & pl.col("date").is_in(DATES[cut - 1:cut + 1])
    prices = PANEL.filter(~gap)
    caps = CAPS.filter(pl.col("symbol") != "BBB")  # BBB's turnover uses the fallback
    _seed(store, prices.filter(pl.col("date") <= DATES[cut]), caps)
    build_features(store, config, lookahead=False)
    _seed(store, prices, caps)
    result = build_features(store, config, lookahead=False)
    assert result.meta["build"]["mode"] == "incremental"
    assert result.meta["build"]["reason"].endswith(
        f"recomputed from {DATES[cut - 1]}: BBB traded again after missing sessions")
    assert result.meta["build"]["new_sessions"] == len(DATES) - 1 - cut
    incremental, counted = _features(store), _meta(store)["turnover_fallback_rows"]
    build_features(store, config, lookahead=False, incremental=False)
    full = _features(store)
    assert incremental.filter(pl.col("symbol") == "BBB", pl.col("date") == DATES[cut]).height
    _assert_close(incremental, full)
    assert counted["BBB"] == full.filter(pl.col("symbol") == "BBB").height
    assert counted == _meta(store)["turnover_fallback_rows"]


def test_a_reopened_span_in_a_dated_universe_counts_rows_outside_it_once(tmp_path):
    """The rows recomputed from the first session a symbol missed were counted by the last
    build already: the merged count of rows outside the membership equals a full build's."""
    data = tmp_path / "data"
    store, config = Store(data), AuroraConfig(data_dir=data)
    cut = 390
    gap = (pl.col("symbol") == "BBB") & pl.col("date").is_in(DATES[cut - 1:cut + 1])
    prices = PANEL.filter(~gap)
    symbols = PANEL["symbol"].unique().sort().to_list()
    # CCC leaves a few sessions before the gap: its rows there are outside the membership
    members = pl.DataFrame({"symbol": symbols, "start": DATES[0],
                            "end": [DATES[cut - 4] if s == "CCC" else None for s in symbols]},
                           schema_overrides={"end": pl.Date})
    _publish(store, prices.filter(pl.col("date") <= DATES[cut]))
    build_features(store, config, universe=members, lookahead=False)
    _publish(store, prices)
    result = build_features(store, config, universe=members, lookahead=False)
    assert result.meta["build"]["mode"] == "incremental"
    assert "BBB traded again" in result.meta["build"]["reason"]
    incremental, outside = _features(store), result.meta["universe"]["rows_outside_membership"]
    build_features(store, config, universe=members, lookahead=False, incremental=False)
    assert outside == _meta(store)["universe"]["rows_outside_membership"] > 0
    _assert_close(incremental, _features(store))


def test_an_incremental_build_reads_only_the_years_it_rewrites(tmp_path, monkeypatch):
    """The old parts of the years before the first new session's are not read: their
    summary comes from the last build's stored one. A build with nothing new keeps every
    part; a stored summary that is not the one the meta names is not used."""
    from aurora.features import incremental

    starts: list[object] = []
    read = incremental.read_dataset
    monkeypatch.setattr(incremental, "read_dataset",
                        lambda *a, **k: starts.append(k.get("start")) or read(*a, **k))
    data = tmp_path / "data"
    store, config = Store(data), AuroraConfig(data_dir=data)
    _publish(store, PANEL.filter(pl.col("date") <= DATES[-3]))
    build_features(store, config, lookahead=False)
    _publish(store, PANEL)
    result = build_features(store, config, lookahead=False)
    assert result.meta["build"]["mode"] == "incremental" and starts == [dt.date(2021, 1, 1)]
    rows = _features(store)
    again = build_features(store, config, lookahead=False)  # nothing new
    assert (again.meta["build"]["mode"], again.meta["build"]["new_sessions"]) == (
        "incremental", 0)
    assert again.rows == result.rows and _features(store).equals(rows)
    assert starts[-1] == dt.date(2021, 1, 1)
    # a build that wrote no summary (an older Aurora): it inherited the last one's
    meta = {k: v for k, v in _meta(store).items() if k != "summary_sha256"}
    with store.transaction("build", base=store.current_version()) as txn:
        atomic_write_json(txn.path("features.meta.json"), meta)
    assert build_features(store, config, lookahead=False).rows == result.rows
    assert starts[-1] is None  # every part read: the stored summary is not the meta's
    build_features(store, config, lookahead=False, incremental=False)
    _assert_close(rows, _features(store))


LONG = random_panel(n_sessions=560, seed=3)
LONG_DATES = sorted(LONG["date"].unique().to_list())
YEAR_END = max(d for d in LONG_DATES if d.year == 2021)


@pytest.mark.parametrize("reopened", [False, True])
def test_an_incremental_build_into_a_new_year_equals_a_full_one(tmp_path, monkeypatch,
                                                                 reopened):
    """Built through the last session of 2021, then 2022's sessions: no old part is read
    (or, with a symbol back after missing 2021's last two sessions, only 2021's), 2020 and
    2021 are summarized from the stored summary, and features, meta and summary equal a
    full rebuild's."""
    from aurora.features import incremental as module

    data = tmp_path / "data"
    store, config = Store(data), AuroraConfig(data_dir=data)
    end = LONG_DATES.index(YEAR_END)
    gap = (pl.col("symbol") == "BBB") & pl.col("date").is_in(LONG_DATES[end - 1:end + 1])
    prices = LONG.filter(~gap) if reopened else LONG
    caps = CAPS.filter(pl.col("symbol") != "BBB")
    _seed(store, prices.filter(pl.col("date") <= YEAR_END), caps)
    first = build_features(store, config, lookahead=False)
    built = _features(store)
    # nothing new at the year's end: nothing to read or write, every part kept
    again = build_features(store, config, lookahead=False)
    assert (again.meta["build"]["mode"], again.meta["build"]["new_sessions"]) == (
        "incremental", 0)
    assert again.meta["row_count"] == first.meta["row_count"]
    assert _features(store).equals(built)
    _seed(store, prices, caps)
    starts: list[object] = []
    read = module.read_dataset
    monkeypatch.setattr(module, "read_dataset",
                        lambda *a, **k: starts.append(k.get("start")) or read(*a, **k))
    result = build_features(store, config, lookahead=False)
    assert result.meta["build"]["mode"] == "incremental", result.meta["build"]
    assert starts == [dt.date(2021 if reopened else 2022, 1, 1)]
    assert ("traded again" in result.meta["build"]["reason"]) is reopened
    incremental, meta, stored = _features(store), _meta(store), _summary(store)
    build_features(store, config, lookahead=False, incremental=False)
    _assert_close(incremental, _features(store))
    for key in ("row_count", "symbol_count", "date_range", "gates", "turnover_fallback_rows"):
        assert meta[key] == _meta(store)[key], key
    _assert_same_summary(stored, _summary(store))
