"""Universes: which symbols Aurora fetches, builds and ranks.

A universe file is UTF-8 text (a leading byte-order mark is ignored), one ticker a line;
blank lines and `#` comments (whole-line or trailing) are allowed. Loading validates every
line and raises `UniverseError` naming the file and line number for: an empty name, a
duplicate, a path separator, inner whitespace, a control character, a non-ASCII character
(checked before upper-casing, so a dotless `ı` or a ligature `ﬁ` cannot turn into ASCII
letters), more than 10 characters, or anything else that is not a plausible ticker (ASCII
letters, digits, `.`, `-`; starting with a letter).

A CSV universe starts (after blank and `#` comment lines) with a header naming a `symbol`
column. Without `start` and `end` columns it is a plain list read from that column (other
columns ignored). With them it is a dated universe (`symbol,start,end` in any order): one
membership interval a row, ISO dates, both ends inclusive, `end` empty while the symbol is
still a member; a symbol may have several intervals that do not overlap (it left and came
back). Errors name the file and line: a bad ticker, a missing or malformed date, an end
before its start, overlapping intervals. Every symbol of the file is fetched for its whole
listed life; it is in a cross-section, the training and evaluation rows and the ranking only
on its member dates (`aurora.membership`). A plain list means "always a member".

Symbols are normalised with the map in `resources/symbol_map.toml` (BRK-B -> BRK.B,
FB -> META, ...). That map is data: edit the TOML, not this module.

Which universe a stage uses is decided in one place, `resolve_universe`:
1. the configured file (`--universe`, else `AURORA_UNIVERSE`, else `universe` in
   aurora.toml): any readable file;
2. else the universe recorded in the store version the stage reads (`Manifest.universe`:
   what the fetch, build or predict that made it used);
3. else Aurora's default universe of 130 S&P 500 names.
Every publishing stage records the symbols it used, with their source, in its manifest.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import polars as pl

from aurora.config import AuroraConfig
from aurora.errors import UniverseError
from aurora.membership import Membership, MembershipRow
from aurora.store import MemberInterval, Store, UniverseRecord

MAX_TICKER_LENGTH = 10
_TICKER = re.compile(r"^[A-Z][A-Z0-9.\-]*$")


@dataclass(frozen=True)
class Universe:
    """An ordered, duplicate-free list of normalised symbols, with sectors where known, and
    for a dated universe the membership intervals (None: every symbol always a member)."""

    symbols: tuple[str, ...]
    sectors: Mapping[str, str]
    source: str
    membership: Membership | None = None

    def __len__(self) -> int:
        return len(self.symbols)

    @property
    def dated(self) -> bool:
        return self.membership is not None

    def members_on(self, day: dt.date) -> list[str]:
        """The symbols that are members on `day`, in universe order."""
        if self.membership is None:
            return list(self.symbols)
        on = set(self.membership.members_on(day))
        return [s for s in self.symbols if s in on]

    def record(self) -> UniverseRecord:
        """What a store version records of this universe."""
        members = (None if self.membership is None else tuple(
            MemberInterval(symbol=s, start=a, end=b) for s, a, b in self.membership.rows()))
        return UniverseRecord(symbols=self.symbols, source=self.source, members=members)


@lru_cache(maxsize=1)
def symbol_map() -> Mapping[str, str]:
    """The vendor-spelling -> Alpaca-symbol map shipped in `resources/symbol_map.toml`."""
    text = resources.files("aurora.resources").joinpath("symbol_map.toml").read_text()
    table = tomllib.loads(text).get("symbols", {})
    return {str(k).upper(): str(v).upper() for k, v in table.items()}


def normalize_symbol(symbol: str, mapping: Mapping[str, str] | None = None) -> str:
    """Upper-case, strip, and map a vendor spelling to the symbol Alpaca serves."""
    mapping = symbol_map() if mapping is None else mapping
    clean = symbol.strip().upper()
    return mapping.get(clean, clean)


def ticker_problem(raw: str) -> str | None:
    """Why `raw` is not a plausible ticker, or None when it is."""
    if raw == "":
        return "empty symbol"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in raw):
        return f"control character in symbol {raw!r}"
    if "/" in raw or "\\" in raw:
        return f"path separator in symbol {raw!r}"
    if any(ch.isspace() for ch in raw):
        return f"whitespace inside symbol {raw!r}"
    if not raw.isascii():
        odd = next(ch for ch in raw if not ch.isascii())
        return (f"symbol {raw!r} has the non-ASCII character {odd!r} (U+{ord(odd):04X}); "
                "tickers are ASCII letters, digits, '.', '-'")
    if len(raw) > MAX_TICKER_LENGTH:
        return f"symbol {raw!r} is longer than {MAX_TICKER_LENGTH} characters"
    if raw.upper() in {"NAN", "NULL", "NONE"}:
        return f"symbol {raw!r} would be read as a missing value"
    if not _TICKER.match(raw.upper()):
        return f"symbol {raw!r} is not a ticker (letters, digits, '.', '-')"
    return None


def parse_universe_lines(lines: Iterable[str], source: str) -> list[str]:
    """Validate universe lines and return the normalised symbols in file order.

    Raises `UniverseError("<source>:<line>: <problem>")` on the first bad line.
    """
    seen: dict[str, int] = {}
    symbols: list[str] = []
    for number, line in enumerate(lines, start=1):
        body = line.rstrip("\r\n").split("#", 1)[0].strip(" \t")
        if body == "":
            continue
        problem = ticker_problem(body)
        if problem:
            raise UniverseError(f"{source}:{number}: {problem}")
        symbol = normalize_symbol(body)
        if symbol in seen:
            raise UniverseError(
                f"{source}:{number}: duplicate symbol {symbol!r} (first on line {seen[symbol]})"
            )
        seen[symbol] = number
        symbols.append(symbol)
    if not symbols:
        raise UniverseError(f"{source}: the universe is empty")
    return symbols


def load_universe(path: Path, sectors: Mapping[str, str] | None = None) -> Universe:
    """Read and validate a universe file (any readable path; `~` is expanded). Raises
    UniverseError naming the file and line."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8-sig")  # a leading BOM is not part of line 1
    except FileNotFoundError:
        raise UniverseError(f"{path}: universe file not found") from None
    except IsADirectoryError:
        raise UniverseError(f"{path}: is a directory, not a universe file") from None
    except PermissionError:
        raise UniverseError(f"{path}: universe file is not readable (permission denied)"
                            ) from None
    except UnicodeDecodeError as exc:
        raise UniverseError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    lines = text.splitlines()
    known = sectors if sectors is not None else default_sectors()
    membership = None
    if _is_csv(lines):
        symbols, membership = parse_csv_universe(lines, str(path))
    else:
        symbols = parse_universe_lines(lines, str(path))
    return Universe(tuple(symbols), {s: known[s] for s in symbols if s in known}, str(path),
                    membership)


_DATED_COLUMNS = ("symbol", "start", "end")


def _content(lines: Iterable[str]) -> Iterable[tuple[int, str]]:
    """(line number, line) of the lines that are neither blank nor whole-line comments."""
    for number, line in enumerate(lines, start=1):
        body = line.strip()
        if body and not body.startswith("#"):
            yield number, line


def _is_csv(lines: Sequence[str]) -> bool:
    """A CSV header naming a `symbol` column comes first (`symbol` alone, or with other
    columns: a plain list of the ticker SYMBOL is not a universe anyone means)."""
    first = next(iter(_content(lines)), None)
    return first is not None and "symbol" in (c.strip().lower() for c in first[1].split(","))



def _date(value: str, column: str, where: str, required: bool) -> dt.date | None:
    value = value.strip()
    if not value:
        if required:
            raise UniverseError(f"{where}: {column} is empty (YYYY-MM-DD)")
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise UniverseError(f"{where}: {column} {value!r} is not a date (YYYY-MM-DD)") from None


def _plain_column(cells: Sequence[tuple[int, list[str]]], column: int, source: str
                  ) -> list[str]:
    """The symbols of one CSV column, checked like the lines of a plain list."""
    seen: dict[str, int] = {}
    for number, row in cells:
        raw = row[column].strip()
        problem = ticker_problem(raw)
        if problem:
            raise UniverseError(f"{source}:{number}: {problem}")
        symbol = normalize_symbol(raw)
        if symbol in seen:
            raise UniverseError(f"{source}:{number}: duplicate symbol {symbol!r} (first on "
                                f"line {seen[symbol]})")
        seen[symbol] = number
    if not seen:
        raise UniverseError(f"{source}: the universe is empty")
    return list(seen)


def parse_csv_universe(lines: Sequence[str], source: str
                       ) -> tuple[list[str], Membership | None]:
    """Validate the lines of a universe CSV (module docstring): with `start` and `end`
    columns a dated universe (the symbols in order of first appearance and their
    membership), else the `symbol` column as a plain list (membership None).
    UniverseError `<source>:<line>: <problem>`."""
    rows = list(_content(lines))
    header_line, header_text = rows[0]
    header = [h.strip().lower() for h in next(csv.reader([header_text]))]
    dates = [c for c in ("start", "end") if c in header]
    if not dates:
        column = header.index("symbol")
        cells = [(n, next(csv.reader([t]))) for n, t in rows[1:]]
        short = next((n for n, c in cells if len(c) <= column), None)
        if short is not None:
            raise UniverseError(f"{source}:{short}: no symbol field (the header has "
                                f"{len(header)} column(s))")
        return _plain_column(cells, column, source), None
    if len(dates) == 1:
        missing = "end" if "start" in header else "start"
        raise UniverseError(f"{source}:{header_line}: the header lacks column(s) {missing} "
                            "(a dated universe is symbol,start,end)")
    at = {c: header.index(c) for c in _DATED_COLUMNS}
    symbols: list[str] = []
    intervals: dict[str, list[tuple[dt.date, dt.date | None, int]]] = {}
    parsed: list[MembershipRow] = []
    for number, text in rows[1:]:
        where = f"{source}:{number}"
        cells = next(csv.reader([text]))
        if len(cells) < len(header):
            raise UniverseError(f"{where}: {len(cells)} field(s), the header has {len(header)}")
        raw = cells[at["symbol"]].strip()
        problem = ticker_problem(raw)
        if problem:
            raise UniverseError(f"{where}: {problem}")
        symbol = normalize_symbol(raw)
        start = _date(cells[at["start"]], "start", where, required=True)
        end = _date(cells[at["end"]], "end", where, required=False)
        assert start is not None
        if end is not None and end < start:
            raise UniverseError(f"{where}: {symbol} ends on {end}, before its start {start}")
        for other_start, other_end, other_line in intervals.get(symbol, []):
            if start <= (other_end or dt.date.max) and other_start <= (end or dt.date.max):
                raise UniverseError(
                    f"{where}: {symbol} {start}..{end or ''} overlaps its interval "
                    f"{other_start}..{other_end or ''} on line {other_line}")
        if symbol not in intervals:
            symbols.append(symbol)
        intervals.setdefault(symbol, []).append((start, end, number))
        parsed.append((symbol, start, end))
    if not symbols:
        raise UniverseError(f"{source}: the universe is empty")
    return symbols, Membership.from_rows(parsed)


@lru_cache(maxsize=1)
def _default_rows() -> tuple[tuple[str, str], ...]:
    text = resources.files("aurora.resources").joinpath("default_universe.csv").read_text()
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    return tuple((row["symbol"], row["sector"]) for row in csv.DictReader(lines))


def default_sectors() -> dict[str, str]:
    """GICS sector of each default-universe symbol."""
    return dict(_default_rows())


def default_universe() -> Universe:
    """Aurora's default universe: 130 large S&P 500 names with GICS sectors."""
    rows = _default_rows()
    return Universe(tuple(s for s, _ in rows), dict(rows), "aurora default universe")


UniverseLike = Universe | Sequence[str] | pl.DataFrame


def as_universe(symbols: UniverseLike, source: str = "given by the caller") -> Universe:
    """`symbols` as a Universe (a notebook may pass a plain list, or a frame with columns
    symbol, start, end for a dated universe); default sectors attached.

    Raises UniverseError for an implausible ticker, a bad interval or an empty list.
    """
    if isinstance(symbols, Universe):
        return symbols
    known = default_sectors()
    if isinstance(symbols, pl.DataFrame):
        missing = [c for c in _DATED_COLUMNS if c not in symbols.columns]
        if missing:
            raise UniverseError(f"{source}: a dated universe frame lacks column(s) "
                                f"{', '.join(missing)}")
        text = symbols.select(pl.col(c).cast(pl.String).fill_null("") for c in _DATED_COLUMNS)
        lines = [",".join(_DATED_COLUMNS), *(",".join(r) for r in text.iter_rows())]
        dated, membership = parse_csv_universe(lines, source)
        return Universe(tuple(dated), {s: known[s] for s in dated if s in known}, source,
                        membership)
    parsed = parse_universe_lines(list(symbols), source)
    return Universe(tuple(parsed), {s: known[s] for s in parsed if s in known}, source)


def from_record(record: UniverseRecord) -> Universe:
    """The Universe a store version recorded (with its membership when dated)."""
    known = default_sectors()
    membership = None if record.members is None else Membership.from_rows(
        (m.symbol, m.start, m.end) for m in record.members)
    return Universe(record.symbols, {s: known[s] for s in record.symbols if s in known},
                    record.source, membership)


def resolve_universe(config: AuroraConfig, store: Store,
                     version: str | None = None) -> Universe:
    """The universe a stage uses (the rule in the module docstring).

    `version` is the store version the stage reads (default: latest). Raises
    UniverseError naming the file and line for a malformed configured file.
    """
    if config.universe is not None:
        return load_universe(config.universe)
    recorded = store.universe(version) if (version or store.current_version()) else None
    if recorded is not None:
        return from_record(recorded)
    return default_universe()
