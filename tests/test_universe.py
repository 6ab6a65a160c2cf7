from pathlib import Path

import pytest

from aurora.errors import UniverseError
from aurora.universe import default_universe, load_universe, normalize_symbol, parse_universe_lines


def test_default_universe_has_130_unique_symbols_with_sectors():
    uni = default_universe()
    assert len(uni) == 130
    assert len(set(uni.symbols)) == 130
    assert {"AAPL", "MSFT", "JPM", "XOM", "JNJ"} <= set(uni.symbols)
    assert set(uni.sectors) == set(uni.symbols)
    assert len(set(uni.sectors.values())) == 11


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("BRK-B", "BRK.B"), ("bf-b", "BF.B"), ("ANTM", "ELV"), ("HCP", "PEAK"), ("FB", "META"),
     (" aapl ", "AAPL")],
)
def test_normalisation_map(raw, expected):
    assert normalize_symbol(raw) == expected


def test_comments_and_blank_lines_are_allowed():
    assert parse_universe_lines(["# header", "", "AAPL  # apple", "  msft", "FB"], "u") == [
        "AAPL", "MSFT", "META"]


@pytest.mark.parametrize(
    ("lines", "needle"),
    [
        (["AAPL", "AAPL"], "u:2: duplicate symbol 'AAPL' (first on line 1)"),
        (["AAPL", "FB", "META"], "u:3: duplicate symbol 'META'"),
        (["AAPL", "../etc"], "u:2: path separator"),
        (["AAPL", "BRK B"], "u:2: whitespace inside"),
        (["ABCDEFGHIJK"], "u:1: symbol 'ABCDEFGHIJK' is longer than 10"),
        (["AA\x07PL"], "u:1: control character"),
        (["NaN"], "u:1: symbol 'NaN' would be read as a missing value"),
        (["$SPX"], "u:1: symbol '$SPX' is not a ticker"),
        (["# only comments"], "u: the universe is empty"),
    ],
)
def test_bad_universe_lines_name_the_line(lines, needle):
    with pytest.raises(UniverseError) as info:
        parse_universe_lines(lines, "u")
    assert needle in str(info.value)


def test_load_universe_missing_file(tmp_path: Path):
    with pytest.raises(UniverseError, match="universe file not found"):
        load_universe(tmp_path / "nope.txt")


def test_a_universe_file_in_the_home_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "sp100.txt").write_text("AAPL\nMSFT\n")
    universe = load_universe(Path("~/lists/sp100.txt"))
    assert universe.symbols == ("AAPL", "MSFT") and universe.source == str(
        tmp_path / "lists" / "sp100.txt")


def test_a_leading_byte_order_mark_is_not_part_of_the_first_ticker(tmp_path: Path):
    path = tmp_path / "u.txt"
    path.write_bytes("AAPL\nMSFT\n".encode("utf-8-sig"))
    assert load_universe(path).symbols == ("AAPL", "MSFT")


@pytest.mark.parametrize(
    ("text", "line", "char"),
    [("AAPL\nıbm\n", 2, "U+0131"),           # dotless i: would upper-case to IBM
     ("ﬁ\n", 1, "U+FB01"),                   # ligature: would upper-case to FI
     ("AAPL\nMSFT\nﬃﬃﬃﬃ\n", 3, "U+FB03"),    # 4 characters, 12 once upper-cased
     ("AAPL\n\ufeffMSFT\n", 2, "U+FEFF")],   # a byte-order mark inside the file
)
def test_non_ascii_tickers_are_refused_with_file_and_line(tmp_path: Path, text, line, char):
    path = tmp_path / "u.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UniverseError) as info:
        load_universe(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: symbol ") and "non-ASCII character" in message
    assert char in message and "\n" not in message
