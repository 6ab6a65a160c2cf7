"""Reading another vendor's files of raw daily bars and corporate actions (Aurora's second
source): the reader of `aurora import bars` (`aurora.importbars`) and of
`aurora validate --against`.

Bars (`read_bars`):
- PATH is one file, or a directory whose `*.csv`, `*.parquet` and `*.pq` files (directly
  inside it, sorted by name; hidden and other files skipped and counted) are read and
  concatenated (`bar_files`).
- Columns are matched case-insensitively, spaces and hyphens read as `_`, with common vendor
  aliases: `date` (`timestamp`, `time`, `datetime`, `day`, `trade_date`, `t`), `symbol`
  (`ticker`, `sym`), `open`/`high`/`low`/`close` (`o`/`h`/`l`/`c`), `volume` (`vol`, `v`),
  optional `vwap` (`vw`) and `trade_count` (`trades`, `transactions`, `n`). A file without
  a symbol column is one symbol's bars, named by its file name (`AAPL.csv`).
- The bars are RAW (unadjusted), like the bars a fetch stores: `adj_close` and any other
  adjusted column is never read (it is ignored, with a note); splits and dividends come from
  the corporate actions (`--actions`), from which adjusted prices are derived.
- A date is `YYYY-MM-DD`, optionally followed by a time (`2024-01-02T05:00:00Z`), a Parquet
  Date or Datetime, or an integer `YYYYMMDD`; a timestamp gives its date as written (in its
  own time zone), so Alpaca's 05:00Z stamps, a vendor's 00:00Z stamps and New York midnight
  all name the session.
- Prices and volume must be numbers; an empty cell, `NA`, `N/A`, `null` or `nan` is a
  missing value (a `nulls` finding of validation). `trade_count` must be a whole number.
- Symbols are checked (`aurora.universe.ticker_problem`) and normalised
  (`normalize_symbol`: `brk-b` -> `BRK.B`, `FB` -> `META`).
- One (symbol, date) key per bar over all the files (`aurora.schemas.find_duplicate_keys`,
  after normalisation).
Every refusal is one DataValidationError line naming the file and the row of the first bad
row found (CSV: the file line, header = line 1; Parquet: the 1-based row), or the first
duplicated key.

Corporate actions (`read_actions`, one file or a directory like the bars): the store's
schema (`aurora.fetch.corporate_actions.CA_SCHEMA`: the columns and action types a fetch
stores); `type` is read as `action_type`, `ticker` as symbol, `split_from`/`split_to` as
`old_rate`/`new_rate`, `cash_amount` as `cash_rate`. `id` is optional (an action without one
gets `import:<symbol>:<type>:<ex_date>`) and unique; a split (and a stock dividend, stored
as the split it is: `rate` shares per share is old_rate 1, new_rate 1 + rate) needs positive
`old_rate` and `new_rate`, a cash dividend a finite `cash_rate` >= 0, a name change its
`old_symbol` (not mapped: it is the old name), a spin-off positive rates and its `target_symbol`.
- Nothing here prints or writes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import polars as pl

from aurora.errors import DataValidationError
from aurora.fetch.corporate_actions import CA_SCHEMA, TYPES
from aurora.reference import read_user_table
from aurora.schemas import (
    DIVIDEND_TYPES,
    PRICES_SCHEMA,
    SPLIT_TYPES,
    find_duplicate_keys,
)
from aurora.universe import (
    normalize_symbol,
    ticker_problem,
)

SUFFIXES = (".csv", ".parquet", ".pq")
ACTION_TYPES = TYPES  # what the fetch stores: splits, dividends, name changes, spin-offs
MISSING_TEXT = ("", "NA", "N/A", "na", "n/a", "nan", "NaN", "NAN", "null", "NULL", "None")

BAR_ALIASES: dict[str, str] = {
    "timestamp": "date", "time": "date", "datetime": "date", "day": "date",
    "trade_date": "date", "t": "date",
    "ticker": "symbol", "sym": "symbol",
    "o": "open", "h": "high", "l": "low", "c": "close",
    "vol": "volume", "v": "volume",
    "vw": "vwap",
    "trades": "trade_count", "transactions": "trade_count", "n": "trade_count",
}
ACTION_ALIASES: dict[str, str] = {
    "type": "action_type", "ticker": "symbol", "exdate": "ex_date",
    "processdate": "process_date", "split_from": "old_rate", "split_to": "new_rate",
    "cash_amount": "cash_rate",
}
REQUIRED_BARS = ("date", "open", "high", "low", "close", "volume")
_ADJUSTED_HINT = "adj"  # columns such as adj_close, adj_open, adjusted_close: never read


# -- reading ------------------------------------------------------------------------------
@dataclass(frozen=True)
class BarsRead:
    """The bars of one PATH, in `PRICES_SCHEMA`, sorted by symbol and date."""

    source: Path  # the absolute PATH given
    files: tuple[Path, ...]  # the files read, in order
    bars: pl.DataFrame
    notes: tuple[str, ...] = ()
    skipped: int = 0  # files in the directory that are not .csv/.parquet (or hidden)


def bar_files(path: Path) -> tuple[Path, list[Path], int]:
    """(absolute PATH, the files to read, how many directory entries were skipped).

    DataValidationError when PATH does not exist or a directory holds no bar file."""
    source = Path(path).expanduser().absolute()
    if source.is_file():
        return source, [source], 0
    if not source.is_dir():
        raise DataValidationError(f"{source}: no such file or directory")
    entries = sorted(p for p in source.iterdir() if p.is_file())
    files = [p for p in entries if not p.name.startswith(".")
             and p.suffix.lower() in SUFFIXES]
    if not files:
        raise DataValidationError(f"{source}: no .csv or .parquet file in this directory")
    return source, files, len(entries) - len(files)


def _load(path: Path, index: int, aliases: Mapping[str, str]) -> pl.DataFrame:
    """A file's table with normalised column names, plus `_file` (`index`) and `_row` (the
    row an error reports: the CSV line, header = line 1; the 1-based Parquet row)."""
    frame, first = read_user_table(path)
    renamed: dict[str, str] = {}
    for col in frame.columns:
        key = col.strip().lower().replace(" ", "_").replace("-", "_")
        key = aliases.get(key, key)
        clash = next((c for c, k in renamed.items() if k == key), None)
        if clash is not None or key.startswith("_"):
            raise DataValidationError(
                f"{path}: columns {clash!r} and {col!r} both give {key}" if clash is not None
                else f"{path}: column {col!r}: names starting with '_' are reserved")
        renamed[col] = key
    if frame.height == 0:
        raise DataValidationError(f"{path}: no data rows")
    return frame.rename(renamed).with_columns(
        pl.lit(index, dtype=pl.UInt32).alias("_file"),
        pl.int_range(first, first + frame.height, dtype=pl.Int64).alias("_row"))


def _batches(frames: Sequence[pl.DataFrame], files: Sequence[Path]) -> list[pl.DataFrame]:
    """The CSV tables as one frame (all text, parsed in one pass), each Parquet table alone
    (its own dtypes)."""
    texts = [f for f, path in zip(frames, files, strict=True) if path.suffix.lower() == ".csv"]
    typed = [f for f, path in zip(frames, files, strict=True) if path.suffix.lower() != ".csv"]
    return ([pl.concat(texts, how="diagonal")] if texts else []) + typed


Describe = Callable[[int], str]  # the problem at a (0-based) row, for the error line


def _first_bad(frame: pl.DataFrame, checks: Sequence[tuple[pl.Expr, Describe]]
               ) -> tuple[int, str] | None:
    """(row, problem) of the first row of `frame` that any check's mask flags (nulls are
    not flagged; a row flagged by several checks reports the first check), or None. One
    pass over the frame, whatever the number of checks."""
    if not checks or frame.height == 0:
        return None
    firsts = frame.select(
        mask.fill_null(False).arg_true().first().alias(f"_c{i}")
        for i, (mask, _) in enumerate(checks)).row(0)
    hits = [(row, i) for i, row in enumerate(firsts) if row is not None]
    if not hits:
        return None
    row, i = min(hits)
    return int(row), checks[i][1](int(row))


class _Parser:
    """Columns of a batch of tables (with `_file` and `_row`, see `_load`), parsed in one
    pass: value expressions plus checks (a mask and what to say about the first row it
    flags). `run()` raises the one-line error naming the file and row of the first bad row,
    else returns the parsed columns with `_file` and `_row`."""

    def __init__(self, frame: pl.DataFrame, files: Sequence[Path]) -> None:
        self.frame, self.files = frame, files
        self.values: list[pl.Expr] = []
        self.checks: list[tuple[pl.Expr, Describe]] = []

    def raw(self, name: str, row: int) -> Any:
        return self.frame.get_column(name)[row]

    def fail(self, row: int, problem: str, frame: pl.DataFrame | None = None) -> NoReturn:
        """DataValidationError `<file>: row <n>: <problem>` for `row` of `frame` (default:
        the input)."""
        where = (frame if frame is not None else self.frame).select("_file", "_row").row(row)
        raise DataValidationError(f"{self.files[where[0]]}: row {where[1]}: {problem}")

    def date(self, name: str, *, required: bool = True) -> None:
        """`name` as Date: a Date, a Datetime (its date as written, in its own zone), an
        integer YYYYMMDD, or text `YYYY-MM-DD` optionally followed by `T` or a space and a
        time."""
        dtype, col = self.frame.schema[name], pl.col(name)
        if dtype == pl.Date:
            value = col
        elif isinstance(dtype, pl.Datetime):
            value = col.dt.date()
        elif dtype.is_integer():
            value = col.cast(pl.String).str.to_date("%Y%m%d", strict=False)
        else:
            text = col.cast(pl.String).str.strip_chars()
            col = pl.when(text != "").then(text)
            value = pl.when(text.str.contains(r"^\d{4}-\d{2}-\d{2}(?:[T ].*)?$")).then(
                text.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False))
        if required:
            self.checks.append((col.is_null(), lambda r: f"empty {name}"))
        self.checks.append((col.is_not_null() & value.is_null(), lambda r: (
            f"{name} {self.raw(name, r)!r} is not a date (YYYY-MM-DD, optionally followed "
            "by a time)")))
        self.values.append(value.alias(name))

    def number(self, name: str, *, whole: bool = False) -> None:
        """`name` as Float64 (Int64 when `whole`); the spellings of a missing value are
        null, any other text is refused."""
        dtype, col = self.frame.schema[name], pl.col(name)
        if dtype.is_numeric():
            value = col.cast(pl.Float64)
        elif dtype in (pl.String, pl.Categorical, pl.Null):
            text = col.cast(pl.String).str.strip_chars()
            missing = text.is_null() | text.is_in(MISSING_TEXT)
            value = pl.when(~missing).then(text).cast(pl.Float64, strict=False)
            self.checks.append((~missing & value.is_null(), lambda r: (
                f"column {name} is not numeric ({self.raw(name, r).strip()!r})")))
        else:
            value = pl.lit(None, dtype=pl.Float64)
            self.checks.append((col.is_not_null(), lambda r: (
                f"column {name} has dtype {dtype}, not numbers")))
        if whole:
            self.checks.append((value.is_not_null() & (~value.is_finite()
                                                       | (value != value.round(0))),
                                lambda r: f"{name} {self.raw(name, r)!r} is not a whole number"))
            value = value.cast(pl.Int64, strict=False)
        self.values.append(value.alias(name))

    def symbol(self, name: str, *, required: bool = True, mapped: bool = True) -> None:
        """Checked, normalised symbols: upper-cased, vendor spellings mapped unless `mapped`
        is False (a name change's old symbol is the old name). Only the distinct spellings
        are checked and mapped."""
        text = pl.col(name).cast(pl.String).str.strip_chars()
        text = pl.when(text != "").then(text)
        spellings = self.frame.select(text.drop_nulls().unique()).to_series().to_list()
        problems = {s: p for s in spellings if (p := ticker_problem(s))}
        if required:
            self.checks.append((text.is_null(), lambda r: f"empty {name}"))
        if problems:
            self.checks.append((text.is_in(list(problems)), lambda r: problems[
                str(self.raw(name, r)).strip()]))
        mapping = {s: normalize_symbol(s) if mapped else s.upper() for s in spellings}
        value = (text.replace_strict(mapping, default=None, return_dtype=pl.String)
                 if mapping else pl.lit(None, dtype=pl.String))
        self.values.append(value.alias(name))

    def absent(self, name: str, dtype: pl.DataType) -> None:
        self.values.append(pl.lit(None, dtype=dtype).alias(name))

    def run(self) -> pl.DataFrame:
        names = [f"_c{i}" for i in range(len(self.checks))]
        out = self.frame.select(*self.values, "_file", "_row", *(
            m.alias(n) for (m, _), n in zip(self.checks, names, strict=True)))
        bad = _first_bad(out, [(pl.col(n), d) for n, (_, d) in
                               zip(names, self.checks, strict=True)])
        if bad is not None:
            self.fail(*bad)
        return out.drop(names)


def _load_bar_file(path: Path, index: int, notes: dict[str, int]) -> pl.DataFrame:
    """One bar file, its columns checked by name, a file without a symbol column given its
    file name as symbol; `notes` counts the files of each column that is not read."""
    frame = _load(path, index, BAR_ALIASES)
    missing = [c for c in REQUIRED_BARS if c not in frame.columns]
    if missing:
        hint = (" (adjusted columns such as adj_close are not read: Aurora imports raw bars)"
                if any(c.startswith(_ADJUSTED_HINT) for c in frame.columns) else "")
        found = ", ".join(c for c in frame.columns if not c.startswith("_"))
        raise DataValidationError(
            f"{path}: missing column(s) {', '.join(missing)} (found: {found}){hint}")
    if "symbol" not in frame.columns:
        problem = ticker_problem(path.stem)
        if problem:
            raise DataValidationError(
                f"{path}: no symbol column, and the file name {path.stem!r} is not a ticker "
                f"({problem}); add a symbol or ticker column")
        frame = frame.with_columns(pl.lit(path.stem).alias("symbol"))
    for extra in (c for c in frame.columns if c not in PRICES_SCHEMA
                  and not c.startswith("_")):
        notes[extra] = notes.get(extra, 0) + 1
    return frame.select(c for c in frame.columns if c in PRICES_SCHEMA or c.startswith("_"))


def _parse_bars(frame: pl.DataFrame, files: Sequence[Path]) -> pl.DataFrame:
    parser = _Parser(frame, files)
    parser.date("date")
    parser.symbol("symbol")
    for name in ("open", "high", "low", "close", "volume", "vwap", "trade_count"):
        if name in frame.columns:
            parser.number(name, whole=name == "trade_count")
        else:
            parser.absent(name, PRICES_SCHEMA[name])
    return parser.run().cast(PRICES_SCHEMA)  # type: ignore[arg-type]


def _ignored_notes(notes: Mapping[str, int], files: int) -> list[str]:
    adjusted = sorted(c for c in notes if c.startswith(_ADJUSTED_HINT))
    other = sorted(c for c in notes if not c.startswith(_ADJUSTED_HINT))
    out = []
    if adjusted:
        out.append(f"column(s) {', '.join(adjusted)} not read (in "
                   f"{max(notes[c] for c in adjusted)} of {files} file(s)): Aurora imports raw "
                   "bars; adjusted prices are derived from the corporate actions")
    if other:
        shown = ", ".join(other[:10]) + (f" (+{len(other) - 10} more)" if len(other) > 10 else "")
        out.append(f"column(s) {shown} not read")
    return out


def read_bars(path: Path) -> BarsRead:
    """Read, check and normalise the bars of a file or directory (module docstring).

    Raises a one-line DataValidationError naming the file and row (or the first duplicated
    key) for anything that is not a bar Aurora can store."""
    source, files, skipped = bar_files(path)
    notes: dict[str, int] = {}
    loaded = [_load_bar_file(f, i, notes) for i, f in enumerate(files)]
    bars = pl.concat([_parse_bars(batch, files) for batch in _batches(loaded, files)],
                     how="vertical")
    duplicates = find_duplicate_keys(bars.select(list(PRICES_SCHEMA)))
    if duplicates is not None:
        symbol, day = duplicates.first()
        rows = bars.filter((pl.col("symbol") == symbol) & (pl.col("date") == day)).sort(
            "_file", "_row").select("_file", "_row").rows()
        (fa, ra), (fb, rb) = rows[0], rows[1]
        raise DataValidationError(
            f"{files[fa]}: row {ra}: duplicate bar for {symbol} on {day} (again at "
            f"{'row ' if fa == fb else f'{files[fb].name} row '}{rb}); "
            f"{duplicates.message()}")
    bars = bars.drop("_row", "_file").sort("symbol", "date")
    out_notes = _ignored_notes(notes, len(files))
    if skipped:
        out_notes.append(f"{skipped} other file(s) in {source} skipped (not .csv/.parquet)")
    return BarsRead(source, tuple(files), bars, tuple(out_notes), skipped)


def empty_actions() -> pl.DataFrame:
    """An empty corporate-actions table in the store's schema."""
    return pl.DataFrame(schema=CA_SCHEMA)


def _load_action_file(path: Path, index: int) -> pl.DataFrame:
    frame = _load(path, index, ACTION_ALIASES)
    missing = [c for c in ("action_type", "symbol", "ex_date") if c not in frame.columns]
    if missing:
        found = ", ".join(c for c in frame.columns if not c.startswith("_"))
        raise DataValidationError(
            f"{path}: missing column(s) {', '.join(missing)} (found: {found})")
    return frame


def _parse_actions(frame: pl.DataFrame, files: Sequence[Path]) -> pl.DataFrame:
    parser = _Parser(frame, files)
    kinds = pl.col("action_type").cast(pl.String).str.strip_chars().str.to_lowercase()
    parser.checks.append((kinds.is_null() | ~kinds.is_in(ACTION_TYPES), lambda r: (
        f"action_type {parser.raw('action_type', r)!r} is not one of "
        f"{', '.join(ACTION_TYPES)}")))
    parser.values.append(kinds.alias("action_type"))
    parser.symbol("symbol")
    parser.date("ex_date")
    if "id" in frame.columns:
        ids = pl.col("id").cast(pl.String).str.strip_chars()
        parser.values.append(pl.when(ids != "").then(ids).alias("id"))
    else:  # made from symbol, type and ex_date below
        parser.absent("id", pl.String())
    optional: dict[str, Callable[[str], None]] = {
        "old_symbol": lambda c: parser.symbol(c, required=False, mapped=False),
        "target_symbol": lambda c: parser.symbol(c, required=False),
        "process_date": lambda c: parser.date(c, required=False),
        "old_rate": parser.number, "new_rate": parser.number, "cash_rate": parser.number,
    }
    for name, parse in optional.items():
        if name in frame.columns:
            parse(name)
        else:
            parser.absent(name, CA_SCHEMA[name])
    out = parser.run().with_columns(pl.coalesce("id", pl.concat_str(
        [pl.lit("import"), "symbol", "action_type", pl.col("ex_date").cast(pl.String)],
        separator=":")).alias("id"))
    kind = pl.col("action_type")

    def positive(c: str) -> pl.Expr:
        return pl.col(c).is_not_null() & pl.col(c).is_finite() & (pl.col(c) > 0)

    def what(problem: str) -> Describe:
        def describe(row: int) -> str:
            r = out.row(row, named=True)
            return f"{r['action_type']} of {r['symbol']} on {r['ex_date']} {problem}"
        return describe

    bad = _first_bad(out, [
        (kind.is_in([*SPLIT_TYPES, "spin_off"]) & ~(positive("old_rate")
                                                     & positive("new_rate")),
         what("needs positive old_rate and new_rate")),
        ((kind == "spin_off") & pl.col("target_symbol").is_null(),
         what("needs its target_symbol (the company spun off)")),
        (kind.is_in(DIVIDEND_TYPES) & ~(pl.col("cash_rate").is_not_null()
                                        & pl.col("cash_rate").is_finite()
                                        & (pl.col("cash_rate") >= 0)),
         what("needs a finite cash_rate >= 0")),
        ((kind == "name_change") & pl.col("old_symbol").is_null(), what("needs its old_symbol")),
    ])
    if bad is not None:
        parser.fail(*bad, frame=out)
    return out.select(*CA_SCHEMA, "_file", "_row").cast(CA_SCHEMA)  # type: ignore[arg-type]


def read_actions(path: Path) -> pl.DataFrame:
    """Corporate actions of a file or directory in the store's schema, one row per id,
    sorted by symbol, ex_date, action_type; one-line DataValidationError naming file and
    row otherwise."""
    _, files, _ = bar_files(path)
    loaded = [_load_action_file(f, i) for i, f in enumerate(files)]
    actions = pl.concat([_parse_actions(batch, files) for batch in _batches(loaded, files)],
                        how="vertical").sort("_file", "_row")
    again = _first_bad(actions, [(pl.col("id").is_duplicated()
                                  & ~pl.col("id").is_first_distinct(), lambda r: "")])
    if again is not None:
        row = actions.row(again[0], named=True)
        firsts = actions.filter(pl.col("id") == row["id"]).row(0, named=True)
        raise DataValidationError(
            f"{files[row['_file']]}: row {row['_row']}: duplicate action id {row['id']!r} "
            f"(first at {files[firsts['_file']].name} row {firsts['_row']})")
    return actions.drop("_row", "_file").sort("symbol", "ex_date", "action_type")
