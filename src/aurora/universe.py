"""Universes: which symbols Aurora fetches, builds and ranks.

A universe file is UTF-8 text (a leading byte-order mark is ignored), one ticker a line;
blank lines and `#` comments (whole-line or trailing) are allowed. Loading validates every
line and raises `UniverseError` naming the file and line number for: an empty name, a
duplicate, a path separator, inner whitespace, a control character, a non-ASCII character
(checked before upper-casing, so a dotless `ı` or a ligature `ﬁ` cannot turn into ASCII
letters), more than 10 characters, or anything else that is not a plausible ticker (ASCII
letters, digits, `.`, `-`; starting with a letter).

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
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from aurora.config import AuroraConfig
from aurora.errors import UniverseError
from aurora.store import Store, UniverseRecord

MAX_TICKER_LENGTH = 10
_TICKER = re.compile(r"^[A-Z][A-Z0-9.\-]*$")


@dataclass(frozen=True)
class Universe:
    """An ordered, duplicate-free list of normalised symbols, with sectors where known."""

    symbols: tuple[str, ...]
    sectors: Mapping[str, str]
    source: str

    def __len__(self) -> int:
        return len(self.symbols)

    def record(self) -> UniverseRecord:
        """What a store version records of this universe."""
        return UniverseRecord(symbols=self.symbols, source=self.source)


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
    symbols = parse_universe_lines(text.splitlines(), str(path))
    known = sectors if sectors is not None else default_sectors()
    return Universe(tuple(symbols), {s: known[s] for s in symbols if s in known}, str(path))


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


UniverseLike = Universe | Sequence[str]


def as_universe(symbols: UniverseLike, source: str = "given by the caller") -> Universe:
    """`symbols` as a Universe (a notebook may pass a plain list); default sectors attached.

    Raises UniverseError for an implausible ticker or an empty list.
    """
    if isinstance(symbols, Universe):
        return symbols
    parsed = parse_universe_lines(list(symbols), source)
    known = default_sectors()
    return Universe(tuple(parsed), {s: known[s] for s in parsed if s in known}, source)


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
        known = default_sectors()
        return Universe(recorded.symbols, {s: known[s] for s in recorded.symbols if s in known},
                        recorded.source)
    return default_universe()
