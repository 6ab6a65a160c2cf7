"""Sector map and fundamentals import: keys, units, one-line errors, point-in-time use."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from aurora import reference
from aurora.atomic import atomic_write_parquet
from aurora.errors import DataValidationError, StoreError
from aurora.reference import fundamentals_as_of, import_fundamentals, import_sector_map
from aurora.store import Store

SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "sp500-sample"
D = dt.date


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_sector_map_csv_normalises_and_publishes(tmp_path, data_dir):
    path = write(tmp_path, "sectors.csv",
                 "Symbol,GICS Sector,name\nbrk-b,Financials,Berkshire\nAAPL, Information "
                 "Technology ,Apple\n")
    store = Store(data_dir)
    result = import_sector_map(store, path)
    frame = pl.read_parquet(store.file_path("sector_map.parquet"))
    assert frame.to_dicts() == [{"symbol": "AAPL", "sector": "Information Technology"},
                                {"symbol": "BRK.B", "sector": "Financials"}]
    assert result.rows == 2 and store.manifest().params["kind"] == "sector-map"


@pytest.mark.parametrize("text, message", [
    ("symbol,sector\nAAPL,Tech\naapl,Tech\n", "row 3: duplicate symbol AAPL (first at row 2)"),
    ("symbol,sector\nAAPL,\n", "row 2: empty sector for AAPL"),
    ("symbol,sector\nA/B,Tech\n", "row 2: path separator"),
    ("ticker,industry\nAAPL,Tech\n", "missing column(s) sector"),
    ("symbol,sector\n", "no data rows"),
])
def test_sector_map_errors_name_file_and_row(tmp_path, data_dir, text, message):
    path = write(tmp_path, "bad.csv", text)
    with pytest.raises(DataValidationError) as info:
        import_sector_map(Store(data_dir), path)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value)
    assert "\n" not in str(info.value)
    assert Store(data_dir).current_version() is None


def test_fundamentals_units_per_snapshot_and_pit(tmp_path, data_dir):
    path = write(tmp_path, "f.csv", "\n".join([
        "symbol,as_of,market_cap,eps,name",
        "AAA,2016-07-10,107.4,7.5,Alpha",      # billions (old snapshot)
        "BBB,2016-07-10,2.5,1.0,Beta",
        "AAA,2018-02-08,1.3e11,8.1,Alpha",     # USD (new snapshot)
        "BBB,2018-02-08,3.0e9,,Beta",
    ]) + "\n")
    store = Store(data_dir)
    result = import_fundamentals(store, path)
    frame = pl.read_parquet(store.file_path("fundamentals.parquet"))
    caps = dict(zip(zip(frame["symbol"], frame["as_of"], strict=True), frame["market_cap"],
                    strict=True))
    assert caps[("AAA", D(2016, 7, 10))] == pytest.approx(107.4e9)
    assert caps[("BBB", D(2018, 2, 8))] == pytest.approx(3.0e9)
    assert frame.columns == ["symbol", "as_of", "market_cap", "eps"]
    meta = store.manifest().files["fundamentals.parquet"]
    assert meta.meta("market_cap_rescaled")["as_of"] == ["2016-07-10"]
    assert any("billions" in n for n in result.notes) and any("eps 1" in n for n in result.notes)
    # point in time: visible from as_of on, never before
    keys = pl.DataFrame({"symbol": ["AAA", "AAA", "AAA", "BBB"],
                         "date": [D(2016, 7, 8), D(2016, 7, 11), D(2018, 2, 8), D(2017, 1, 3)]})
    pit = fundamentals_as_of(frame, keys)
    assert pit["eps"].to_list() == [None, 7.5, 8.1, 1.0]
    assert pit["date"].to_list() == keys["date"].to_list()


@pytest.mark.parametrize("rows, message", [
    (["AAA,2016-07-10,1", "AAA,2016-07-10,2"],
     "row 3: duplicate (symbol, as_of) (AAA, 2016-07-10)"),
    (["AAA,10/07/2016,1"], "row 2: as_of '10/07/2016' is not a date"),
    (["AAA,2016-07-10,1", "BBB,2016-07-10,lots"], "row 3: column market_cap is not numeric"),
    (["AAA,2016-07-10,-5"], "row 2: negative market_cap for AAA"),
])
def test_fundamentals_errors_name_file_and_row(tmp_path, data_dir, rows, message):
    path = write(tmp_path, "f.csv", "symbol,as_of,market_cap\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataValidationError) as info:
        import_fundamentals(Store(data_dir), path)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value)


@pytest.mark.skipif(not SAMPLE.exists(), reason="sp500 sample not available")
def test_real_sample_fundamentals_and_sectors(data_dir):
    store = Store(data_dir)
    result = import_fundamentals(store, SAMPLE / "fundamentals.parquet")
    frame = pl.read_parquet(store.file_path("fundamentals.parquet"))
    by_snapshot = frame.group_by("as_of").agg(pl.col("market_cap").median()).sort("as_of")
    # every snapshot ends up in USD: medians of S&P 500 caps are in the tens of billions
    assert all(1e10 < m < 1e11 for m in by_snapshot["market_cap"])
    assert result.rows == 368 and any("market_cap was in billions" in n for n in result.notes)
    sectors = import_sector_map(store, SAMPLE / "sector_map.parquet")
    assert sectors.rows == 129
    assert set(store.manifest().files) >= {"fundamentals.parquet", "sector_map.parquet"}


@pytest.mark.parametrize(("caps", "ok"), [
    ([3000.0, 260.0, 35.0], True),                      # billions
    ([3.0e12, 2.6e11, 3.5e10], True),                   # USD
    ([3_000_000.0, 260_000.0, 35_000.0], False),        # millions: would be read as USD
    ([35_000.0, 20_000.0, 9_000.0], False),             # millions below 1e6: x1e9 too big
])
def test_market_cap_units_must_be_usd_or_billions(tmp_path, caps, ok):

    path = tmp_path / "f.csv"
    path.write_text("symbol,as_of,market_cap\n" + "".join(
        f"{s},2024-01-02,{c}\n" for s, c in zip(["AAA", "BBB", "CCC"], caps, strict=True)))
    store = Store(tmp_path / "data")
    if ok:
        result = import_fundamentals(store, path)
        assert result.rows == 3
    else:
        with pytest.raises(DataValidationError, match=r"f\.csv: market_cap of the as_of "
                                                      r"2024-01-02 snapshot has median"):
            import_fundamentals(store, path)
        assert store.current_version() is None


def test_import_publishes_nothing_over_a_version_published_meanwhile(tmp_path, data_dir,
                                                                     monkeypatch):
    path = write(tmp_path, "sectors.csv", "symbol,sector\nAAPL,Information Technology\n")
    store = Store(data_dir)
    real = reference._read

    def racing(source: Path):  # another process publishes while the file is checked
        with store.transaction("fetch", base=store.current_version()) as txn:
            atomic_write_parquet(txn.path("prices.parquet"), pl.DataFrame({"x": [1]}))
        return real(source)

    monkeypatch.setattr(reference, "_read", racing)
    with pytest.raises(StoreError, match="another run published version"):
        import_sector_map(store, path)
    assert store.file_path("sector_map.parquet") is None and len(store.versions()) == 1


@pytest.mark.parametrize(("value", "shown"), [("inf", "'inf'"), ("-inf", "'-inf'"),
                                              ("1e400", "'1e400'")])
def test_fundamentals_csv_with_a_non_finite_number_is_refused(tmp_path, data_dir, value,
                                                               shown):
    path = write(tmp_path, "f.csv", "symbol,as_of,market_cap,eps\n"
                 "AAA,2018-02-08,1.3e11,1.0\n"
                 f"BBB,2018-02-08,{value},2.0\n")
    with pytest.raises(DataValidationError) as info:
        import_fundamentals(Store(data_dir), path)
    assert str(info.value) == (f"{path}: row 3: market_cap of BBB is {shown}, not a finite "
                               "number (give the value, or leave it empty if unknown)")
    assert Store(data_dir).current_version() is None


def test_fundamentals_parquet_with_nan_is_refused(tmp_path, data_dir):
    path = tmp_path / "f.parquet"
    pl.DataFrame({"symbol": ["AAA", "BBB", "CCC"], "as_of": [D(2018, 2, 8)] * 3,
                  "market_cap": [1.3e11, 2e10, 3e10],
                  "eps": [1.0, float("nan"), 2.0]}).write_parquet(path)
    with pytest.raises(DataValidationError, match=rf"^{path}: row 2: eps of BBB is nan, not a "
                                                  "finite number"):
        import_fundamentals(Store(data_dir), path)
    assert Store(data_dir).current_version() is None
    # missing values stay allowed: an empty cell, NA or nan text in a CSV, a null in Parquet
    csv = write(tmp_path, "ok.csv", "symbol,as_of,market_cap,eps\nAAA,2018-02-08,1.3e11,\n"
                "BBB,2018-02-08,2e10,nan\nCCC,2018-02-08,3e10,NA\n")
    assert import_fundamentals(Store(data_dir), csv).rows == 3
