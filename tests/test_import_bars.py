"""`aurora import bars`: another vendor's raw bars into the store, validated like a fetch.

The real S&P 500 sample (../shared/data/sp500-sample, skipped where absent) is written as
vendor CSV files and imported through the CLI; its one real error-level defect (AMD's
+52.3% on 2016-04-22, docs/validation.md) is configured as a warning where the import
covers it, as the operator of tests/validate/test_sample_data.py would after reading it.
Small hand-built bars cover raw splits with corporate actions, vendor spellings and the
one-line errors for bad files.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from aurora import calendar
from aurora.atomic import atomic_write_json
from aurora.cli.main import main
from aurora.config import load_config
from aurora.errors import ConfigError, DataValidationError
from aurora.fetch.publish import load_stored
from aurora.fetch.source import PriceSource
from aurora.importbars import import_bars
from aurora.store import Store
from aurora.store.bars import read_prices
from aurora.store.datasets import write_dataset
from aurora.vendorfiles import read_actions, read_bars

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "sp500-sample"
OHLCV = ["date", "symbol", "open", "high", "low", "close", "volume"]
SUBSET = ["A", "AMD", "CB", "GE", "MMM"]
needs_sample = pytest.mark.skipif(not (SAMPLE / "prices.parquet").exists(),
                                  reason="no sp500 sample")


@pytest.fixture(scope="module")
def sample() -> pl.DataFrame:
    if not (SAMPLE / "prices.parquet").exists():
        pytest.skip("no sp500 sample")
    return pl.read_parquet(SAMPLE / "prices.parquet")


@pytest.fixture()
def lenient(tmp_path: Path) -> Path:
    """A configuration downgrading large_move, for the sample's AMD earnings jump."""
    path = tmp_path / "aurora.toml"
    path.write_text('[validation.severities]\nlarge_move = "warning"\n')
    return path


def raw(frame: pl.DataFrame) -> pl.DataFrame:
    """The raw OHLCV of `frame` as the store holds it (vwap, trade_count unknown)."""
    return frame.select(OHLCV).with_columns(
        pl.lit(None, dtype=pl.Float64).alias("vwap"),
        pl.lit(None, dtype=pl.Int64).alias("trade_count")).sort("symbol", "date")


def stored(data_dir: Path) -> pl.DataFrame:
    return read_prices(Store(data_dir))


def manifest(data_dir: Path) -> dict:
    return json.loads((Store(data_dir).latest / "manifest.json").read_text())


def bars(symbol: str, closes: list[float], start: dt.date = dt.date(2024, 1, 2)
         ) -> pl.DataFrame:
    """Clean raw bars on consecutive NYSE sessions from `start`."""
    days = calendar.sessions(start, start + dt.timedelta(days=2 * len(closes) + 10))
    days = days[:len(closes)]
    opens = [closes[0], *closes[:-1]]
    return pl.DataFrame({
        "date": days, "symbol": [symbol] * len(closes), "open": opens,
        "high": [max(o, c) * 1.01 for o, c in zip(opens, closes, strict=True)],
        "low": [min(o, c) * 0.99 for o, c in zip(opens, closes, strict=True)],
        "close": closes, "volume": [1e6] * len(closes)})


def walk(n: int, first: float) -> list[float]:
    return [round(first * (1 + 0.01 * ((i % 3) - 1) + 0.001 * i), 4) for i in range(n)]


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


# -- the S&P 500 sample ---------------------------------------------------------------------
@needs_sample
def test_sample_as_csv_per_symbol_publishes_a_valid_store(sample, tmp_path, data_dir,
                                                          lenient, capsys):
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    headers = {"date": "Date", "open": "Open", "high": "High", "low": "Low",
               "close": "Close", "volume": "Volume", "adj_close": "Adj Close"}
    for (symbol,), group in sample.group_by("symbol"):
        # a Yahoo-style file per symbol: no symbol column, the file is named by the ticker
        group.drop("symbol").rename(headers).write_csv(vendor / f"{symbol}.csv")
    (vendor / "README.txt").write_text("not bars\n")

    args = ["import", "bars", str(vendor), "--data-dir", str(data_dir)]
    assert main([*args, "--config", str(lenient)]) == 0
    out = capsys.readouterr().out
    assert "imported raw bars: 130,000 bars, 130 symbols, 1000 sessions" in out
    assert "adj_close not read" in out and "1 other file(s)" in out
    assert "large_move AMD" in out  # the real jump, reported as configured (a warning)

    assert stored(data_dir).equals(raw(sample))  # raw OHLCV, never adj_close
    meta = manifest(data_dir)
    entry = meta["files"]["prices.index.json"]
    assert entry["adjustment"] == "raw" and entry["source_url"] == f"import:{vendor}"
    assert (entry["rows"], entry["symbols"], entry["sessions"]) == (130_000, 130, 1000)
    assert (entry["date_min"], entry["date_max"]) == ("2015-01-12", "2018-12-31")
    assert meta["stage"] == "import" and len(meta["universe"]["symbols"]) == 130
    assert meta["files"]["corporate_actions.parquet"]["rows"] == 0
    assert {"validation.json", "universe.txt", "sector_map.parquet"} <= set(meta["files"])

    assert main(["validate", "--data-dir", str(data_dir), "--config", str(lenient)]) == 0
    report = json.loads((data_dir / "state" / "validation-report.json").read_text())
    assert report["ok"] is True and report["stats"]["rows"] == 130_000
    assert report["stats"]["universe_source"] == f"imported bars {vendor}"


@needs_sample
def test_sample_as_one_csv_with_vendor_spellings(sample, tmp_path, data_dir, lenient,
                                                 capsys):
    part = sample.filter(pl.col("symbol").is_in(SUBSET)
                         & (pl.col("date").dt.year() == 2016))
    vendor = part.select(
        pl.col("symbol").str.to_lowercase().replace({"mmm": "brk-b"}).alias("Ticker"),
        (pl.col("date").cast(pl.String) + "T05:00:00Z").alias("timestamp"),
        "open", "high", "low", "close", "volume", "adj_close")
    path = tmp_path / "bars.csv"
    vendor.write_csv(path)

    # The sample's real AMD jump blocks the import with default severities, like a fetch.
    assert main(["import", "bars", str(path), "--data-dir", str(data_dir)]) == 5
    line = one_error_line(capsys.readouterr().err)
    assert "failed validation" in line and "AMD" in line and "2016-04-22" in line
    assert Store(data_dir).current_version() is None  # nothing published
    assert (data_dir / "state" / "import-validation-report.json").exists()

    assert main(["import", "bars", str(path), "--data-dir", str(data_dir),
                 "--config", str(lenient)]) == 0
    expected = raw(part.with_columns(pl.col("symbol").replace({"MMM": "BRK.B"})))
    assert stored(data_dir).equals(expected)
    assert (Store(data_dir).latest / "universe.txt").read_text().split() == sorted(
        ["A", "AMD", "BRK.B", "CB", "GE"])

    # The same files again: nothing changes, nothing is published.
    version = Store(data_dir).current_version()
    capsys.readouterr()
    assert main(["import", "bars", str(path), "--data-dir", str(data_dir),
                 "--config", str(lenient)]) == 0
    assert f"no change; version {version} stays latest" in capsys.readouterr().out
    assert Store(data_dir).versions() == [version]


# -- the store's binding to one source -------------------------------------------------------
def test_another_source_is_refused_unless_new_history(tmp_path, data_dir, capsys):
    first, second = tmp_path / "one.csv", tmp_path / "two.parquet"
    frame = pl.concat([bars("AAA", walk(20, 50.0)), bars("BBB", walk(20, 80.0))])
    frame.write_csv(first)
    frame.with_columns(pl.col("close") * 1.0001).write_parquet(second)
    store = Store(data_dir)
    assert main(["import", "bars", str(first), "--data-dir", str(data_dir)]) == 0
    base = store.current_version()
    # A build of these prices, which a later import must not pair with other prices.
    with store.transaction("build", base=base) as txn:
        atomic_write_json(txn.path("features.meta.json"), {"built": True})
        write_dataset(txn, "features", pl.DataFrame(
            {"date": [dt.date(2024, 1, 2)], "symbol": ["AAA"], "f_x": [1.0]}))
    capsys.readouterr()

    assert main(["import", "bars", str(second), "--data-dir", str(data_dir)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"holds prices from import:{first}" in line and "--new-history" in line

    assert main(["import", "bars", str(second), "--data-dir", str(data_dir),
                 "--new-history"]) == 0
    assert "new history: the stored prices from import:" in capsys.readouterr().out
    meta = manifest(data_dir)
    assert meta["files"]["prices.index.json"]["source_url"] == f"import:{second}"
    assert "features.meta.json" not in meta["files"]
    assert "features.summary.parquet" not in meta["files"]
    assert not [name for name in meta["files"] if name.startswith("features/")]
    assert meta["params"]["new_history"] is True
    assert stored(data_dir).get_column("close").to_list() == pytest.approx(
        (frame.sort("symbol", "date").get_column("close") * 1.0001).to_list())

    # ... and a fetch from Alpaca into this store is refused the same way.
    cfg = load_config(None, overrides={"data_dir": str(data_dir)})
    with pytest.raises(ConfigError, match=r"holds prices fetched from import:.*--new-history"):
        load_stored(store, PriceSource.of(cfg))


# -- raw bars and corporate actions ---------------------------------------------------------
def test_a_raw_split_needs_its_corporate_action(tmp_path, data_dir, capsys):
    closes = walk(30, 200.0)
    closes[15:] = [c / 3 for c in closes[15:]]  # 3-for-1 on the 16th session, unadjusted
    split = bars("SPL", closes)
    path = tmp_path / "bars.parquet"
    pl.concat([split, bars("CLN", walk(30, 40.0))]).write_parquet(path)
    ex_date = split.get_column("date")[15]
    actions = tmp_path / "actions.csv"
    actions.write_text(f"Type,Ticker,Ex Date,split_from,split_to\n"
                       f"forward_split,spl,{ex_date},1,3\n")

    assert main(["import", "bars", str(path), "--data-dir", str(data_dir)]) == 5
    line = one_error_line(capsys.readouterr().err)
    assert "large_move SPL" in line and str(ex_date) in line

    assert main(["import", "bars", str(path), "--actions", str(actions),
                 "--data-dir", str(data_dir)]) == 0
    assert "corporate actions: 1 from" in capsys.readouterr().out
    table = pl.read_parquet(Store(data_dir).latest / "corporate_actions.parquet")
    assert table.select("id", "action_type", "symbol", "ex_date", "old_rate",
                        "new_rate").rows() == [
        (f"import:SPL:forward_split:{ex_date}", "forward_split", "SPL", ex_date, 1.0, 3.0)]
    assert stored(data_dir).filter(pl.col("symbol") == "SPL").get_column(
        "close").to_list() == closes  # stored raw, adjusted only on read
    assert manifest(data_dir)["files"]["corporate_actions.parquet"]["source"] == str(actions)


@pytest.mark.parametrize(("text", "message"), [
    ("id,action_type,symbol,ex_date,old_rate,new_rate\nx,forward_split,SPL,2024-01-10,,2\n",
     "actions.csv: row 2: forward_split of SPL on 2024-01-10 needs positive old_rate and "
     "new_rate"),
    ("action_type,symbol,ex_date,cash_rate\ncash_dividend,SPL,2024-01-10,0.5\n"
     "cash_merger,SPL,2024-02-10,\n",
     "actions.csv: row 3: action_type 'cash_merger' is not one of"),
    ("action_type,symbol,ex_date,cash_rate\nstock_dividend,SPL,2024-02-10,0.05\n",
     "actions.csv: row 2: stock_dividend of SPL on 2024-02-10 needs positive old_rate and "
     "new_rate"),
    ("id,action_type,symbol,ex_date,cash_rate\na,cash_dividend,SPL,2024-01-10,0.5\n"
     "a,cash_dividend,SPL,2024-04-10,0.5\n",
     "actions.csv: row 3: duplicate action id 'a' (first at actions.csv row 2)"),
    ("action_type,symbol,ex_date\nname_change,META,2022-06-09\n",
     "actions.csv: row 2: name_change of META on 2022-06-09 needs its old_symbol"),
])
def test_bad_corporate_actions_are_one_line_naming_file_and_row(tmp_path, text, message):
    path = tmp_path / "actions.csv"
    path.write_text(text)
    with pytest.raises(DataValidationError) as err:
        read_actions(path)
    assert str(err.value).startswith(f"{path.parent}/{message}")


# -- reading --------------------------------------------------------------------------------
def test_parquet_timestamps_give_their_session_and_columns_alias(tmp_path):
    frame = bars("ABC", walk(5, 10.0))
    utc = frame.select(
        (pl.col("date").cast(pl.Datetime("us")) + pl.duration(hours=5)).dt.replace_time_zone(
            "UTC").alias("t"),  # Alpaca's New York midnight, in UTC
        pl.col("open").alias("o"), pl.col("high").alias("h"), pl.col("low").alias("l"),
        pl.col("close").alias("c"), pl.col("volume").alias("v"),
        pl.lit(12, dtype=pl.Int32).alias("n"), (pl.col("close") * 1.001).alias("vw"))
    folder = tmp_path / "bars"
    folder.mkdir()
    utc.write_parquet(folder / "ABC.parquet")  # no symbol column: the file name
    got = read_bars(folder)
    assert got.bars.get_column("date").to_list() == frame.get_column("date").to_list()
    assert got.bars.get_column("symbol").unique().to_list() == ["ABC"]
    assert got.bars.get_column("trade_count").to_list() == [12] * 5
    assert got.bars.schema["vwap"] == pl.Float64 and got.files == (folder / "ABC.parquet",)


GOOD = "2024-01-02,AAA,10,11,9,10.5,1000\n"
HEADER = "date,symbol,open,high,low,close,volume\n"


@pytest.mark.parametrize(("files", "message"), [
    ({"a.csv": HEADER + GOOD + "2024-01-03,AA PL,10,11,9,10.5,1000\n"},
     "a.csv: row 3: whitespace inside symbol 'AA PL'"),
    ({"a.csv": HEADER + GOOD + "2024-01-03,AAA,10,11,9,ten,1000\n"},
     "a.csv: row 3: column close is not numeric ('ten')"),
    ({"a.csv": HEADER.replace(",close", ",adj_close") + GOOD},
     "a.csv: missing column(s) close (found: date, symbol, open, high, low, adj_close, "
     "volume) (adjusted columns such as adj_close are not read"),
    ({"a.csv": HEADER + GOOD, "b.csv": HEADER + "2024-01-03,AAA,1,1,1,1,1\n"
                                                "2024-01-02T00:00:00Z,aaa,1,1,1,1,1\n"},
     "a.csv: row 2: duplicate bar for AAA on 2024-01-02 (again at "),
    ({"a.csv": HEADER + GOOD + "01/03/2024,AAA,10,11,9,10.5,1000\n"},
     "a.csv: row 3: date '01/03/2024' is not a date (YYYY-MM-DD"),
    ({"a.csv": HEADER + GOOD + "2024-01-03,,10,11,9,10.5,1000\n"}, "a.csv: row 3: empty symbol"),
    ({"a.csv": HEADER}, "a.csv: no data rows"),
    ({"bad name.csv": "date,open,high,low,close,volume\n2024-01-02,1,1,1,1,1\n"},
     "bad name.csv: no symbol column, and the file name 'bad name' is not a ticker"),
])
def test_bad_bars_are_one_line_naming_file_and_row(tmp_path, data_dir, capsys, files,
                                                   message):
    folder = tmp_path / "vendor"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    assert main(["import", "bars", str(folder), "--data-dir", str(data_dir)]) == 5
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: {folder}/{message}"), line
    assert Store(data_dir).current_version() is None


def test_missing_values_are_validation_findings_not_parse_errors(tmp_path, data_dir):
    path = tmp_path / "a.csv"
    path.write_text(HEADER + GOOD + "2024-01-03,AAA,10,11,9,NA,1000\n")
    assert read_bars(path).bars.get_column("close").to_list() == [10.5, None]
    cfg = load_config(None, overrides={"data_dir": str(data_dir)})
    with pytest.raises(DataValidationError, match=r"failed validation .* nulls AAA"):
        import_bars(Store(data_dir), path, config=cfg)


def test_a_configured_universe_is_the_one_validated_and_recorded(tmp_path, data_dir):
    path = tmp_path / "a.csv"
    pl.concat([bars("AAA", walk(10, 50.0)), bars("BBB", walk(10, 20.0))]).write_csv(path)
    listed = tmp_path / "universe.txt"
    listed.write_text("AAA\nCCC\n")
    cfg = load_config(None, overrides={"data_dir": str(data_dir), "universe": str(listed)})
    with pytest.raises(DataValidationError, match="missing_symbols CCC") as err:
        import_bars(Store(data_dir), path, config=cfg)
    assert err.value.missing_symbols == ("CCC",)
    listed.write_text("AAA\n")
    result = import_bars(Store(data_dir), path, config=cfg)
    assert result.universe.symbols == ("AAA",) and result.symbols == 2
    assert any("unexpected_symbols BBB" in w for w in result.warnings)
    assert Store(data_dir).universe().source == str(listed)


def test_a_dated_universe_member_that_left_ends_at_its_last_bar(tmp_path, data_dir):
    """GONE left the index and stopped trading 40 sessions before the file ends: with its
    membership ended it is no stale_symbol; as a plain list member it is."""
    path = tmp_path / "a.csv"
    pl.concat([bars("AAA", walk(80, 50.0)), bars("GONE", walk(40, 20.0))]).write_csv(path)
    plain = tmp_path / "plain.txt"
    plain.write_text("AAA\nGONE\n")
    cfg = load_config(None, overrides={"data_dir": str(data_dir), "universe": str(plain)})
    with pytest.raises(DataValidationError, match="stale_symbol GONE"):
        import_bars(Store(data_dir), path, config=cfg)
    dated = tmp_path / "members.csv"
    dated.write_text("symbol,start,end\nAAA,2024-01-02,\nGONE,2024-01-02,2024-02-28\n")
    cfg = load_config(None, overrides={"data_dir": str(data_dir), "universe": str(dated)})
    result = import_bars(Store(data_dir), path, config=cfg)
    assert result.symbols == 2 and not any("stale_symbol" in w for w in result.warnings)
    assert Store(data_dir).universe().members is not None


def test_empty_path_and_missing_path(tmp_path, data_dir, capsys):
    assert main(["import", "bars", "", "--data-dir", str(data_dir)]) == 2
    assert "PATH: the path is empty" in one_error_line(capsys.readouterr().err)
    assert main(["import", "bars", str(tmp_path / "nope"), "--data-dir", str(data_dir)]) == 5
    assert "nope: no such file or directory" in one_error_line(capsys.readouterr().err)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["import", "bars", str(empty), "--data-dir", str(data_dir)]) == 5
    assert "no .csv or .parquet file" in one_error_line(capsys.readouterr().err)
