"""`aurora validate --against`: the store reconciled with a second source.

The CLI tests import part of the real S&P 500 sample (../shared/data/sp500-sample, skipped
where absent) as the store, then reconcile it with a vendor CSV of the same bars in which
disagreements are planted: a shifted close, a day missing on each side, an extra symbol.
The unit tests run `reconcile` on tiny hand-built frames.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import polars as pl
import pytest

from aurora.cli.main import main
from aurora.store import Store
from aurora.validation.against import DISAGREEMENT_SCHEMA, reconcile, reconcile_store

SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "sp500-sample"
SYMBOLS = ["A", "CB", "GE", "MMM", "WM"]
OHLCV = ["date", "symbol", "open", "high", "low", "close", "volume"]
D = dt.date.fromisoformat
SHIFTED = ("MMM", D("2018-03-05"))  # close x 1.01 in the other source
GONE_FROM_OTHER = ("GE", D("2018-06-01"))
GONE_FROM_STORE = ("A", D("2018-07-02"))


def at(symbol: str, day: dt.date) -> pl.Expr:
    return (pl.col("symbol") == symbol) & (pl.col("date") == day)


@pytest.fixture(scope="module")
def part() -> pl.DataFrame:
    """Five symbols of the sample over 2018 (1,255 bars), raw OHLCV."""
    if not (SAMPLE / "prices.parquet").exists():
        pytest.skip("no sp500 sample")
    return (pl.read_parquet(SAMPLE / "prices.parquet")
            .filter(pl.col("symbol").is_in(SYMBOLS) & (pl.col("date").dt.year() == 2018))
            .select(OHLCV).sort("symbol", "date"))


@pytest.fixture()
def store_dir(part, tmp_path) -> Path:
    """A store holding `part` without GONE_FROM_STORE, imported through the CLI."""
    path = tmp_path / "store-bars.csv"
    part.filter(~at(*GONE_FROM_STORE)).write_csv(path)
    data = tmp_path / "data"
    assert main(["import", "bars", str(path), "--data-dir", str(data)]) == 0
    return data


@pytest.fixture()
def planted(part, tmp_path) -> Path:
    """The other source: `part` with a shifted close, a missing day and an extra symbol."""
    other = pl.concat([
        part.filter(~at(*GONE_FROM_OTHER)).with_columns(
            pl.when(at(*SHIFTED)).then(pl.col("close") * 1.01).otherwise(pl.col("close"))
            .alias("close")),
        part.filter(pl.col("symbol") == "WM").with_columns(pl.lit("ZZZ").alias("symbol")),
    ])
    path = tmp_path / "vendor.csv"
    other.rename({"symbol": "Ticker", "date": "Date"}).write_csv(path)
    return path


# -- through the CLI --------------------------------------------------------------------------
def test_planted_disagreements_are_named_and_fail_beyond_the_share(part, store_dir, planted,
                                                                   capsys):
    capsys.readouterr()
    # within the default 1% share the run passes, naming them; beyond --max-share it fails
    assert main(["validate", "--data-dir", str(store_dir), "--against", str(planted)]) == 0
    assert "3 of 1,255 compared bars disagree" in capsys.readouterr().out
    assert main(["validate", "--data-dir", str(store_dir), "--against", str(planted),
                 "--max-share", "0.001"]) == 5
    captured = capsys.readouterr()
    close = part.filter(at(*SHIFTED)).get_column("close")[0]
    out = captured.out
    assert f"MMM 2018-03-05 close: store {close:.10g}, other {close * 1.01:.10g}" in out
    assert "GE 2018-06-01: bar missing in the other source" in out
    assert "A 2018-07-02: bar missing in the store" in out
    assert "symbols only in the other source (1, not compared): ZZZ (251 bars " \
           "2018-01-02..2018-12-31)" in out
    # 3 of 1,255 bars disagree: 0.24%, beyond 0.1%
    assert "FAILED: 3 of 1,255 compared bars disagree" in out
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: reconciliation FAILED: 3 of")
    assert "first: A 2018-07-02: bar missing in the store" in err

    report = json.loads((store_dir / "state" / "validation-report.json").read_text())
    assert report["ok"] is True  # the store itself is valid
    against = report["against"]
    assert against["ok"] is False and against["source"] == str(planted)
    assert against["counts"]["compared_bars"] == 1255
    assert against["counts"]["disagreeing_bars"] == 3
    assert math.isclose(against["share"], 3 / 1255)
    kinds = {(d["kind"], d["symbol"], d["date"], d["column"]) for d in against["disagreements"]}
    assert kinds == {("value", "MMM", "2018-03-05", "close"),
                     ("missing_in_other", "GE", "2018-06-01", None),
                     ("missing_in_store", "A", "2018-07-02", None),
                     ("symbol_only_in_other", "ZZZ", None, None)}
    value = next(d for d in against["disagreements"] if d["kind"] == "value")
    assert value["stored"] == close and math.isclose(value["rel_diff"], 0.01 / 1.01)


def test_within_the_share_exits_0_and_still_names_them(store_dir, planted, capsys):
    args = ["validate", "--data-dir", str(store_dir), "--against", str(planted)]
    assert main([*args, "--max-share", "0.01"]) == 0
    out = capsys.readouterr().out
    assert "reconciliation: OK: 3 of 1,255 compared bars disagree" in out
    assert "MMM 2018-03-05 close" in out
    # Comparing only volume, the shifted close is not a disagreement.
    assert main([*args, "--columns", "volume", "--max-share", "0.01"]) == 0
    assert "MMM 2018-03-05" not in capsys.readouterr().out


def test_differences_within_the_tolerance_agree(part, store_dir, tmp_path, capsys):
    path = tmp_path / "close-enough.parquet"
    part.filter(~at(*GONE_FROM_STORE)).with_columns(
        pl.col("open", "high", "low", "close") * (1 + 1e-9)).write_parquet(path)
    args = ["validate", "--data-dir", str(store_dir), "--against", str(path)]
    assert main(args) == 0
    assert "OK: 0 of 1,254 compared bars disagree" in capsys.readouterr().out
    assert main([*args, "--tolerance", "1e-12"]) == 5  # every bar, at a tighter tolerance
    assert "1,254 of 1,254 compared bars disagree" in capsys.readouterr().err


def test_bad_other_source_and_flags_are_one_line(store_dir, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("date,symbol,open,high,low,close,volume\n2018-01-02,A,1,1,1,1,1\n"
                   "2018-01-03,A/B,1,1,1,1,1\n")
    assert main(["validate", "--data-dir", str(store_dir), "--against", str(bad)]) == 5
    err = capsys.readouterr().err.strip()
    assert err == f"error: {bad}: row 3: path separator in symbol 'A/B'"
    assert main(["validate", "--data-dir", str(store_dir), "--max-share", "0.5"]) == 2
    assert "need --against PATH" in capsys.readouterr().err
    assert main(["validate", "--data-dir", str(store_dir), "--against", str(bad),
                 "--columns", "close,adj_close"]) == 2
    assert "--columns 'close,adj_close': expected some of" in capsys.readouterr().err


def test_a_store_without_prices_reports_the_validation_error(planted, tmp_path, capsys):
    data = tmp_path / "refdata"
    sectors = tmp_path / "sectors.csv"
    sectors.write_text("symbol,sector\nA,Health Care\n")
    assert main(["import", "sector-map", str(sectors), "--data-dir", str(data)]) == 0
    assert main(["validate", "--data-dir", str(data), "--against", str(planted)]) == 5
    assert "missing_file" in capsys.readouterr().err
    report = json.loads((data / "state" / "validation-report.json").read_text())
    assert "holds no prices: run `aurora fetch` first" in report["against"]["error"]


def test_reconcile_store_reads_the_verified_prices(part, store_dir):
    store = Store(store_dir)
    result = reconcile_store(store, part, source="the sample")
    assert result.version == store.current_version()
    assert result.counts["missing_in_store"] == 1 and result.disagreeing_bars == 1
    assert result.notes == ()  # imported bars are raw: nothing to warn about


# -- reconcile on small frames -----------------------------------------------------------------
def frame(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"symbol": pl.String, "date": pl.Date,
                                      "close": pl.Float64, "volume": pl.Float64,
                                      "vwap": pl.Float64}, orient="row")


DAY = [D("2024-01-02"), D("2024-01-03"), D("2024-01-04"), D("2024-01-05")]


def test_values_nulls_zeros_and_nan():
    stored = frame([("A", DAY[0], 10.0, 0.0, None), ("A", DAY[1], 10.0, 5.0, None),
                    ("A", DAY[2], None, 5.0, None), ("A", DAY[3], 10.0, 5.0, None)])
    other = frame([("A", DAY[0], 10.0, 0.0, None), ("A", DAY[1], 10.0 * (1 + 1e-7), 5.0, None),
                   ("A", DAY[2], 10.0, 5.0, None), ("A", DAY[3], float("nan"), 5.0, None)])
    result = reconcile(stored, other, columns=("close", "volume", "vwap"))
    assert result.columns == ("close", "volume")  # vwap: no value on either side
    assert result.notes == ("vwap: no value in the store or the other source; not compared",)
    rows = result.disagreements.select("date", "kind", "column", "stored", "other").rows()
    assert rows[0] == (DAY[2], "value", "close", None, 10.0)  # missing vs a value
    assert rows[1][:4] == (DAY[3], "value", "close", 10.0) and math.isnan(rows[1][4])
    assert result.disagreements.get_column("rel_diff").to_list() == [None, None]
    assert (result.compared_bars, result.disagreeing_bars) == (4, 2)
    assert result.share == 0.5 and not result.ok
    json.dumps(result.to_dict())  # JSON-able, NaN written as text
    assert result.to_dict()["disagreements"][1]["other"] == "nan"


def test_window_symbols_on_one_side_and_nothing_in_common():
    stored = frame([("A", d, 10.0, 1.0, None) for d in DAY] + [("B", DAY[0], 5.0, 1.0, None)])
    other = frame([("A", d, 10.0, 1.0, None) for d in DAY[2:]]
                  + [("C", DAY[3], 7.0, 1.0, None)])
    result = reconcile(stored, other)
    assert result.window == (DAY[2], DAY[3])
    assert (result.compared_bars, result.disagreeing_bars) == (2, 0) and result.ok
    assert result.counts["outside_window_store"] == 2  # A before the other source starts
    assert result.symbols_only.select("symbol", "kind", "bars").rows() == [
        ("B", "symbol_only_in_store", 1), ("C", "symbol_only_in_other", 1)]
    assert result.disagreements.schema == pl.Schema(DISAGREEMENT_SCHEMA)
    assert result.disagreements.select("symbol", "kind").rows() == [
        ("B", "symbol_only_in_store"), ("C", "symbol_only_in_other")]

    apart = reconcile(stored.filter(pl.col("symbol") == "B"), other)
    assert apart.compared_bars == 0 and not apart.ok
    assert apart.failure() == ("reconciliation FAILED: nothing to compare between the store "
                               "and the other source: no symbol and session in common")


def test_share_against_the_maximum_and_bad_settings():
    stored = frame([("A", d, 10.0, 1.0, None) for d in DAY])
    other = stored.with_columns(pl.when(pl.col("date") == DAY[1]).then(11.0)
                                .otherwise(pl.col("close")).alias("close"))
    assert reconcile(stored, other, max_share=0.25).ok
    assert not reconcile(stored, other, max_share=0.2).ok
    assert reconcile(stored, other, rel_tolerance=0.1).disagreeing_bars == 0
    with pytest.raises(ValueError, match="adj_close"):
        reconcile(stored, other, columns=("adj_close",))
    with pytest.raises(ValueError, match="rel_tolerance"):
        reconcile(stored, other, rel_tolerance=-1)
