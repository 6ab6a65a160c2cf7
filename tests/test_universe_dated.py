"""Dated universes: a CSV of membership intervals, validated line by line, recorded in the
store and resolved back with its dates."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from aurora.config import AuroraConfig
from aurora.errors import UniverseError
from aurora.store import Store
from aurora.universe import as_universe, load_universe, resolve_universe

D = dt.date


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "members.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_intervals_members_and_order(tmp_path):
    path = _write(tmp_path, "# S&P membership\n\nsymbol,start,end\nAAPL,2015-01-02,\n"
                            "CELG,2015-01-02,2019-11-20\nbrk-b,2016-03-01,2017-12-29\n"
                            "BRK.B,2018-06-01,\n")
    uni = load_universe(path)
    assert uni.dated and uni.symbols == ("AAPL", "CELG", "BRK.B")
    assert uni.members_on(D(2015, 6, 1)) == ["AAPL", "CELG"]
    assert uni.members_on(D(2019, 11, 20)) == ["AAPL", "CELG", "BRK.B"]  # end is inclusive
    assert uni.members_on(D(2019, 11, 21)) == ["AAPL", "BRK.B"]
    assert uni.members_on(D(2018, 3, 1)) == ["AAPL", "CELG"]  # between BRK.B's intervals
    assert uni.membership is not None
    assert uni.membership.last_member_day("CELG") == D(2019, 11, 20)
    assert uni.membership.last_member_day("AAPL") is None


def test_columns_in_any_order_with_extra_ones(tmp_path):
    path = _write(tmp_path, "name,end,symbol,start\nApple,,AAPL,2015-01-02\n")
    uni = load_universe(path)
    assert uni.symbols == ("AAPL",) and uni.members_on(D(2020, 1, 2)) == ["AAPL"]


@pytest.mark.parametrize(("text", "needle"), [
    ("symbol,start\nAAPL,2015-01-02\n", ":1: the header lacks column(s) end"),
    ("# index\nsymbol,end\nAAPL,\n", ":2: the header lacks column(s) start"),
    ("symbol,start,end\nAAPL,2015-13-01,\n", ":2: start '2015-13-01' is not a date"),
    ("symbol,start,end\nAAPL,,\n", ":2: start is empty"),
    ("symbol,start,end\nAAPL,2016-01-04,2015-01-02\n", ":2: AAPL ends on 2015-01-02, before"),
    ("symbol,start,end\nAAPL,2015-01-02,2016-01-04\n# gap\nAAPL,2016-01-04,\n",
     ":4: AAPL 2016-01-04.. overlaps its interval 2015-01-02..2016-01-04 on line 2"),
    ("symbol,start,end\nAA PL,2015-01-02,\n", ":2: whitespace inside symbol"),
    ("symbol,start,end\nAAPL\n", ":2: 1 field(s), the header has 3"),
    ("symbol,start,end\n", ": the universe is empty"),
])
def test_bad_lines_name_the_file_and_line(tmp_path, text, needle):
    path = _write(tmp_path, text)
    with pytest.raises(UniverseError) as err:
        load_universe(path)
    assert str(err.value).startswith(str(path)) and needle in str(err.value)
    assert "\n" not in str(err.value)


def test_a_csv_without_dates_is_a_plain_list_of_its_symbol_column(tmp_path):
    path = _write(tmp_path, "symbol,sector\r\nAAPL,Tech\r\nbrk-b,Financials\r\n")
    uni = load_universe(path)
    assert uni.symbols == ("AAPL", "BRK.B") and not uni.dated
    path.write_text("symbol\nAAPL\nAAPL\n")
    with pytest.raises(UniverseError, match=r"members.csv:3: duplicate symbol 'AAPL'"):
        load_universe(path)


def test_a_plain_list_is_always_a_member(tmp_path):
    path = tmp_path / "u.txt"
    path.write_text("AAPL\nMSFT\n")
    uni = load_universe(path)
    assert not uni.dated and uni.members_on(D(1990, 1, 2)) == ["AAPL", "MSFT"]
    assert uni.record().members is None


def test_a_frame_from_a_notebook(tmp_path):
    frame = pl.DataFrame({"symbol": ["AAPL", "XOM"], "start": [D(2015, 1, 2), D(2015, 1, 2)],
                          "end": [None, D(2016, 1, 4)]})
    uni = as_universe(frame, "notebook")
    assert uni.members_on(D(2017, 1, 3)) == ["AAPL"]
    with pytest.raises(UniverseError, match="lacks column"):
        as_universe(frame.drop("end"))


def test_the_store_records_the_dates_and_resolves_them_back(tmp_path):
    path = _write(tmp_path, "symbol,start,end\nAAPL,2015-01-02,\nXOM,2015-01-02,2016-01-04\n")
    uni = load_universe(path)
    store = Store(tmp_path / "data")
    with store.transaction("test", base=None, universe=uni.record()) as txn:
        txn.path("note.txt").write_text("x")
    recorded = store.manifest().to_json()["universe"]
    assert {"symbol": "XOM", "start": "2015-01-02", "end": "2016-01-04"} in recorded["members"]
    back = resolve_universe(AuroraConfig(data_dir=tmp_path / "data"), store)
    assert back.symbols == uni.symbols and back.source == str(path)
    assert back.membership is not None and back.membership.rows() == uni.membership.rows()
    assert back.members_on(D(2016, 1, 5)) == ["AAPL"]
