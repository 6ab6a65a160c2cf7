"""The realistic run: the real S&P 500 sample through the emulator, fetch, build, evaluate.

Skipped where ../shared/data/sp500-sample is absent. See scripts/sp500_sample.py.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import math
import sys
from pathlib import Path

import polars as pl
import pytest

from aurora.quarantine import read_quarantine
from aurora.store import Store

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared" / "data" / "sp500-sample"

pytestmark = [
    pytest.mark.skipif(not (SAMPLE / "prices.parquet").exists(), reason="no sp500 sample"),
    pytest.mark.slow,
]


def _script():
    spec = importlib.util.spec_from_file_location("sp500_sample", ROOT / "scripts/sp500_sample.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_dividends_recovered_from_adj_close_reproduce_it():
    script = _script()
    from aurora.adjustments import adjust_bars

    raw = pl.read_parquet(SAMPLE / "prices.parquet").filter(
        pl.col("symbol").is_in(["MMM", "ED", "PG"]))
    actions = script.dividends_from_adj_close(raw)
    assert actions.height > 0 and (actions["cash_rate"] > 0).all()
    adjusted = adjust_bars(raw.drop("adj_close"), actions, "dividend")
    # The dump's adj_close is adjusted as of a later date (dividends after 2018 too), so the
    # two agree up to one constant per symbol.
    ratio = adjusted.select("symbol", (pl.col("close") / raw["adj_close"]).alias("k"))
    spread = ratio.group_by("symbol").agg((pl.col("k").max() / pl.col("k").min() - 1).alias("d"))
    assert spread["d"].max() < 1e-4


def test_sample_end_to_end(tmp_path: Path):
    result = _script().run_sample(SAMPLE, tmp_path / "data")
    # With default severities the real defect quarantines AMD, named with its date, and the
    # 129 other symbols are published; the fetch with large_move a warning then reads AMD's
    # whole history again and its quarantine ends.
    assert result.blocked_by is None
    store = Store(tmp_path / "data")
    first = read_quarantine(store, store.versions()[0])
    assert first.symbols() == ["AMD"]
    assert first.quarantined["AMD"].dates == (dt.date(2016, 4, 22),)
    assert read_quarantine(store).empty
    assert any("quarantine of AMD ended" in line for line in result.fetch_lines)
    # With large_move downgraded, the build passes every gate on real data.
    assert result.build_error is None, result.build_error
    summary = result.evaluation
    assert summary is not None
    for model in (summary["main_model"], summary["baseline"]):
        stats = summary["models"][model]
        assert math.isfinite(stats["rank_ic"]["mean"])
        assert not stats["probable_leakage"]
