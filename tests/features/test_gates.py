from __future__ import annotations

import polars as pl
import pytest

from aurora.features.compute import compute_features
from aurora.features.gates import run_gates

from .conftest import SECTORS


@pytest.fixture(scope="module")
def good(panel):
    return compute_features(panel, sectors=SECTORS)


def _failed(report, gate):
    return [r for r in report.results if r.name == gate and not r.passed]


def test_clean_panel_passes_every_gate(good):
    report = run_gates(good, universe=list(SECTORS))
    assert report.passed, report.summary()


def test_flat_feature_fails_dispersion_and_is_named(good):
    flat = good.with_columns(pl.lit(0.25).alias("f_vol_60d"))
    fails = _failed(run_gates(flat, universe=list(SECTORS)), "dispersion")
    assert [f.feature for f in fails] == ["f_vol_60d"]
    assert len(fails[0].dates) == good["date"].n_unique()


def test_dispersion_is_scale_free(good):
    tiny = good.with_columns(pl.col("f_amihud_illiquidity") * 1e-6)  # natural units ~1e-10
    assert tiny["f_amihud_illiquidity"].abs().max() < 1e-8
    assert not _failed(run_gates(tiny, universe=list(SECTORS)), "dispersion")
    assert not _failed(run_gates(good.with_columns(pl.col("f_ret_1d") * 1e9),
                                 universe=list(SECTORS)), "dispersion")


def test_missing_symbol_fails_coverage(good):
    report = run_gates(good.filter(pl.col("symbol") != "CCC"), universe=list(SECTORS))
    fails = _failed(report, "symbol_coverage")
    assert fails and "CCC" in fails[0].message
    assert "symbol_coverage" in report.summary()


def test_more_than_5_percent_missing_fails(good):
    n = good.height
    holed = good.with_row_index("i").with_columns(
        pl.when(pl.col("i") < int(0.06 * n)).then(None).otherwise(pl.col("f_wvma_20d"))
        .alias("f_wvma_20d")).drop("i")
    fails = _failed(run_gates(holed, universe=list(SECTORS)), "missing")
    assert [f.feature for f in fails] == ["f_wvma_20d"] and fails[0].dates
    ok = good.with_row_index("i").with_columns(
        pl.when(pl.col("i") < int(0.04 * n)).then(None).otherwise(pl.col("f_wvma_20d"))
        .alias("f_wvma_20d")).drop("i")
    assert not _failed(run_gates(ok, universe=list(SECTORS)), "missing")


def test_missing_session_and_wrong_types_and_count(good):
    day = sorted(good["date"].unique())[5]
    report = run_gates(good.filter(pl.col("date") != day), universe=list(SECTORS))
    assert _failed(report, "session_coverage")[0].dates == [str(day)]
    report = run_gates(good.with_columns(pl.col("f_ret_5d").cast(pl.Float32)),
                       universe=list(SECTORS))
    assert _failed(report, "types")[0].feature == "f_ret_5d"
    report = run_gates(good.drop("f_rsv_20d"), universe=list(SECTORS))
    assert "f_rsv_20d" in _failed(report, "feature_count")[0].message


def test_a_feature_judged_from_a_date_is_judged_and_named_on_its_own_dates(good):
    """Before its first date a feature may be all missing (the intraday family before the
    first stored minute day); from it on the usual rule holds, and a failure names dates
    from it on."""
    dates = good["date"].unique().sort()
    start = dates[len(dates) // 2]
    late = good.with_columns(pl.when(pl.col("date") < start).then(None)
                             .otherwise(pl.col("f_wvma_20d")).alias("f_wvma_20d"))
    assert _failed(run_gates(late, universe=list(SECTORS)), "missing")
    assert not _failed(run_gates(late, universe=list(SECTORS),
                                 judged_from={"f_wvma_20d": start}), "missing")
    holed = late.with_columns(pl.when(pl.col("date") == dates[-3]).then(None)
                              .otherwise(pl.col("f_wvma_20d")).alias("f_wvma_20d"))
    share = 1 / (len(dates) - len(dates) // 2)
    fails = _failed(run_gates(holed, universe=list(SECTORS), judged_from={"f_wvma_20d": start},
                              max_missing_fraction=share / 2), "missing")
    assert [f.feature for f in fails] == ["f_wvma_20d"]
    assert fails[0].dates == [str(dates[-3])]
