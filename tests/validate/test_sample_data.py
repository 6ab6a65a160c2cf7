"""The real defects of the S&P 500 sample (/work/shared/data/sp500-sample), found by name.

The sample is 130 symbols x 1,000 sessions (2015-01-12..2018-12-31) of Yahoo daily bars.
It has every NYSE session, no duplicates, no OHLC violations; what it does have is listed
in docs/validation.md and asserted here exactly.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from aurora.config import ValidationConfig
from aurora.universe import default_universe
from aurora.validation import validate_prices

SAMPLE = Path("/work/shared/data/sp500-sample")
TODAY = dt.date(2024, 1, 2)
D = dt.date.fromisoformat

pytestmark = pytest.mark.skipif(not (SAMPLE / "prices.parquet").exists(),
                                reason="S&P 500 sample data not available")


@pytest.fixture(scope="module")
def sample() -> tuple[pl.DataFrame, list[str]]:
    prices = pl.read_parquet(SAMPLE / "prices.parquet")
    universe = [s.strip() for s in (SAMPLE / "universe.txt").read_text().splitlines()
                if s.strip() and not s.startswith("#")]
    return prices, universe


def keyed(report) -> set[tuple[str, str | None, tuple[dt.date, ...]]]:
    return {(f.check, f.symbol, f.dates) for f in report.findings}


def test_default_checks_find_amd_jump_and_cb_flat_bar(sample):
    prices, universe = sample
    report = validate_prices(prices, universe=universe, today=TODAY)
    assert keyed(report) == {
        # AMD +52.3% (2.62 -> 3.99) on its Q1-2016 earnings / China JV day: a real move,
        # but no corporate action explains it, so it must be looked at (error by default)
        ("large_move", "AMD", (D("2016-04-22"),)),
        # CB: open = high = low = close = previous close (111.019997) with 6.9M shares
        ("flat_bar", "CB", (D("2016-01-15"),)),
    }
    assert [f.severity for f in report.errors] == ["error"]
    assert report.stats["rows"] == 130_000 and report.stats["symbols"] == 130
    assert (report.stats["first_date"], report.stats["last_date"]) == ("2015-01-12",
                                                                         "2018-12-31")


def test_tighter_move_threshold_finds_the_real_crashes(sample):
    prices, universe = sample
    report = validate_prices(prices, universe=universe, today=TODAY,
                             config=ValidationConfig(max_move=0.3))
    moves = {(f.symbol, f.dates[0]) for f in report.findings if f.check == "large_move"}
    assert moves == {
        ("AMD", D("2016-04-22")), ("CHK", D("2016-02-08")), ("CHK", D("2016-04-12")),
        ("PCG", D("2018-11-15")), ("PCG", D("2018-11-16")), ("WMB", D("2016-01-14")),
        ("WMB", D("2016-02-08")),
    }


def test_three_session_stale_closes(sample):
    prices, universe = sample
    report = validate_prices(prices, universe=universe, today=TODAY,
                             config=ValidationConfig(stale_run_sessions=3))
    stale = {(f.symbol, f.dates[0], f.count) for f in report.findings
             if f.check == "stale_close"}
    assert stale == {
        ("ADM", D("2015-06-05"), 3), ("AMD", D("2015-02-19"), 3), ("AMD", D("2015-08-17"), 3),
        ("BBT", D("2017-08-23"), 3), ("EQR", D("2017-07-19"), 3), ("GE", D("2018-08-16"), 3),
        ("GRMN", D("2017-06-07"), 3), ("HOLX", D("2016-03-29"), 3),
        ("NTRS", D("2016-10-20"), 3), ("TIF", D("2016-08-02"), 3),
    }


def test_sample_does_not_match_the_default_universe(sample):
    prices, _ = sample
    report = validate_prices(prices, universe=default_universe().symbols, today=TODAY)
    missing = {f.symbol for f in report.findings if f.check == "missing_symbols"}
    extra = {f.symbol for f in report.findings if f.check == "unexpected_symbols"}
    assert len(missing) == 95 and len(extra) == 95
    assert {"AAPL", "MSFT", "BRK.B"} <= missing
    assert {"A", "CHK", "ZBH"} <= extra and "AMD" not in extra


def test_sample_schema_differences_are_tolerated(sample):
    prices, universe = sample
    # adj_close is an extra column; dropping it changes nothing
    assert keyed(validate_prices(prices.drop("adj_close"), universe=universe,
                                 today=TODAY)) == keyed(
        validate_prices(prices, universe=universe, today=TODAY))
