"""Reference data: sector map and point-in-time fundamentals, imported into the store.

`import_sector_map(store, path)` writes data/latest/sector_map.parquet (symbol, sector);
`import_fundamentals(store, path)` writes data/latest/fundamentals.parquet (symbol, as_of,
numeric columns). Input is CSV or Parquet (by suffix). Column names are matched
case-insensitively (`ticker` is taken as symbol, `gics sector` as sector).

Checks (each failure is one DataValidationError line naming the file and the row; CSV rows
are counted as file lines, header = line 1, Parquet rows from 1):
- symbols are plausible tickers, normalised with aurora.universe (BRK-B -> BRK.B);
- sector map: one row per symbol, non-empty sector;
- fundamentals: `as_of` a date (YYYY-MM-DD), one row per (symbol, as_of), every other column
  numeric (descriptive text columns `name`, `company`, `security`, `sector` are dropped and
  noted) and finite: NaN, inf or a number beyond float range (`1e400`) is refused (an empty
  cell, `NA` or `nan` text in a CSV is a missing value), no negative market_cap /
  shares_outstanding.
Units: money columns (market_cap, ebitda, revenue, enterprise_value, net_income) must be in
USD. Vendors often give them in billions; within each as_of snapshot, a column whose median
absolute value is below 1e6 is taken as billions and multiplied by 1e9 (a large company's
market cap is never below a million dollars). shares_outstanding with a median below 1e6 is
taken as millions (x1e6). Every rescaling is recorded in the manifest and the result notes.

Point-in-time: a fundamentals row is usable from its `as_of` date on, never before; use
`fundamentals_as_of` to attach the latest usable row to (symbol, date) keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from aurora.atomic import atomic_write_parquet, sha256_file
from aurora.errors import DataValidationError, first_line
from aurora.schemas import non_finite
from aurora.store import Store
from aurora.store.files import FUNDAMENTALS, SECTOR_MAP
from aurora.universe import normalize_symbol, ticker_problem

MONEY_COLUMNS = ("market_cap", "ebitda", "revenue", "enterprise_value", "net_income")
COUNT_COLUMNS = ("shares_outstanding",)
NON_NEGATIVE = ("market_cap", "shares_outstanding")
TEXT_COLUMNS = ("name", "company", "security", "sector")
_ALIASES = {"ticker": "symbol", "gics sector": "sector", "gics_sector": "sector",
            "date": "as_of", "asof": "as_of"}
_BILLIONS_BELOW = 1e6
MARKET_CAP_MEDIAN_USD = (1e7, 1e13)  # a universe whose median company is $10M .. $10T


@dataclass
class ImportResult:
    """What an import wrote."""

    kind: str
    source: Path
    rows: int
    symbols: int
    version: str
    notes: list[str] = field(default_factory=list)

    def summary_lines(self) -> list[str]:
        lines = [f"imported {self.kind}: {self.rows} rows, {self.symbols} symbols from "
                 f"{self.source} (version {self.version})"]
        lines.extend(f"  note: {n}" for n in self.notes)
        return lines


def read_user_table(path: Path) -> tuple[pl.DataFrame, int]:
    """A user's CSV (every column as text) or Parquet file, and the number to add to a
    0-based row index to get the row an error reports (the CSV line, header = line 1; the
    1-based Parquet row). A missing, unreadable or other file raises DataValidationError
    naming it."""
    if not path.is_file():
        raise DataValidationError(f"{path}: file not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame, first = pl.read_csv(path, infer_schema=False), 2
        elif suffix in (".parquet", ".pq"):
            frame, first = pl.read_parquet(path), 1
        else:
            raise DataValidationError(f"{path}: expected a .csv or .parquet file")
    except (OSError, pl.exceptions.PolarsError) as exc:
        detail = first_line(exc, 120)
        raise DataValidationError(f"{path}: unreadable ({detail})") from None
    return frame, first


def _read(path: Path) -> tuple[pl.DataFrame, int]:
    """`read_user_table` with the reference tables' column names (`_ALIASES`), not empty."""
    frame, first = read_user_table(path)
    renamed: dict[str, str] = {}
    for col in frame.columns:
        key = col.strip().lower()
        key = _ALIASES.get(key, key.replace(" ", "_"))
        if key in renamed.values():
            raise DataValidationError(f"{path}: column {col!r} duplicates another column")
        renamed[col] = key
    frame = frame.rename(renamed)
    if frame.height == 0:
        raise DataValidationError(f"{path}: no data rows")
    return frame, first


def _require(frame: pl.DataFrame, path: Path, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"{path}: missing column(s) {', '.join(missing)} (found: {', '.join(frame.columns)})"
        )


def _symbols(frame: pl.DataFrame, path: Path, first: int) -> list[str]:
    out = []
    for i, raw in enumerate(frame.get_column("symbol").cast(pl.String).to_list()):
        problem = ticker_problem((raw or "").strip())
        if problem:
            raise DataValidationError(f"{path}: row {i + first}: {problem}")
        out.append(normalize_symbol(raw))
    return out


def _publish(store: Store, base: str | None, kind: str, name: str, frame: pl.DataFrame,
             path: Path, meta: dict[str, Any]) -> str:
    params = {"kind": kind, "source": str(path), "source_sha256": sha256_file(path)}
    with store.transaction("import", base=base, params=params) as txn:
        atomic_write_parquet(txn.path(name), frame)
        txn.describe(name, rows=frame.height, source=str(path), **meta)
    version = store.current_version()
    assert version is not None
    return version


def import_sector_map(store: Store, path: Path) -> ImportResult:
    """Validate and publish a sector map (see module docstring)."""
    base = store.current_version()
    path = Path(path)
    frame, first = _read(path)
    _require(frame, path, ("symbol", "sector"))
    symbols = _symbols(frame, path, first)
    sectors = frame.get_column("sector").cast(pl.String).to_list()
    seen: dict[str, int] = {}
    for i, (symbol, sector) in enumerate(zip(symbols, sectors, strict=True)):
        if not (sector or "").strip():
            raise DataValidationError(f"{path}: row {i + first}: empty sector for {symbol}")
        if symbol in seen:
            raise DataValidationError(
                f"{path}: row {i + first}: duplicate symbol {symbol} (first at row {seen[symbol]})"
            )
        seen[symbol] = i + first
    out = pl.DataFrame({"symbol": symbols, "sector": [s.strip() for s in sectors]}).sort("symbol")
    version = _publish(store, base, "sector-map", SECTOR_MAP, out, path, {})
    return ImportResult("sector map", path, out.height, out.height, version)


def _as_of(frame: pl.DataFrame, path: Path, first: int) -> pl.Series:
    col = frame.get_column("as_of")
    if col.dtype == pl.Date:
        parsed = col
    elif col.dtype == pl.Datetime:
        parsed = col.dt.date()
    else:
        parsed = col.cast(pl.String).str.strip_chars().str.to_date("%Y-%m-%d", strict=False)
    bad = (parsed.is_null()).arg_true()
    if bad.len():
        i = bad[0]
        raise DataValidationError(
            f"{path}: row {i + first}: as_of {col[i]!r} is not a date (YYYY-MM-DD)")
    return parsed


def _numeric(frame: pl.DataFrame, name: str, path: Path, first: int) -> pl.Series:
    """Column `name` as Float64; DataValidationError naming the file and row of the first
    value that is not a number, or not a finite one (NaN, inf, 1e400)."""
    col = frame.get_column(name)
    if col.dtype.is_numeric():
        values = col.cast(pl.Float64)
    else:
        text = col.cast(pl.String).str.strip_chars()
        text = pl.Series(name, [None if t in (None, "", "NA", "N/A", "nan", "NaN") else t
                                for t in text.to_list()], dtype=pl.String)
        values = text.cast(pl.Float64, strict=False)
        bad = (values.is_null() & text.is_not_null()).arg_true()
        if bad.len():
            i = bad[0]
            raise DataValidationError(
                f"{path}: row {i + first}: column {name} is not numeric ({text[i]!r})")
    infinite = values.to_frame().select(non_finite(name)).to_series().arg_true()
    if infinite.len():
        i = infinite[0]
        raise DataValidationError(
            f"{path}: row {i + first}: {name} of {frame.get_column('symbol')[i]} is "
            f"{col[i]!r}, not a finite number (give the value, or leave it empty if unknown)")
    return values


def _rescale(frame: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, Any], list[str]]:
    meta: dict[str, Any] = {}
    notes: list[str] = []
    rules = [(c, 1e9, "billions") for c in MONEY_COLUMNS] + [
        (c, 1e6, "millions") for c in COUNT_COLUMNS]
    for column, factor, unit in rules:
        if column not in frame.columns:
            continue
        medians = frame.group_by("as_of").agg(pl.col(column).abs().median().alias("m"))
        scaled = sorted(d for d, m in medians.iter_rows() if m is not None and
                        m < _BILLIONS_BELOW)
        odd = frame.filter(~pl.col("as_of").is_in(scaled) & (pl.col(column) != 0)
                           & (pl.col(column).abs() < _BILLIONS_BELOW)).height
        if odd:
            notes.append(f"{column}: {odd} row(s) below {_BILLIONS_BELOW:g} in snapshots "
                         "otherwise in full units (mixed units?); left as they are")
            meta[f"{column}_suspect_rows"] = odd
        if not scaled:
            meta[f"{column}_unit"] = "USD" if column in MONEY_COLUMNS else "count"
            continue
        frame = frame.with_columns(
            pl.when(pl.col("as_of").is_in(scaled)).then(pl.col(column) * factor)
            .otherwise(pl.col(column)).alias(column))
        days = ", ".join(d.isoformat() for d in scaled)
        meta[f"{column}_rescaled"] = {"from": unit, "factor": factor,
                                      "as_of": [d.isoformat() for d in scaled]}
        notes.append(f"{column} was in {unit} for as_of {days}: multiplied by {factor:g}")
    return frame, meta, notes


def _check_market_cap_scale(frame: pl.DataFrame, path: Path) -> None:
    """Refuse a snapshot whose median market cap, in USD after unit detection, is outside
    MARKET_CAP_MEDIAN_USD: the units were not USD or billions (millions, thousands, ...),
    and guessing would silently scale every turnover figure by 1000x."""
    if "market_cap" not in frame.columns:
        return
    low, high = MARKET_CAP_MEDIAN_USD
    medians = frame.group_by("as_of").agg(pl.col("market_cap").median().alias("m"))
    for as_of, median in medians.sort("as_of").iter_rows():
        if median is not None and not low <= median <= high:
            raise DataValidationError(
                f"{path}: market_cap of the as_of {as_of} snapshot has median {median:.4g} "
                f"USD after unit detection (plausible: {low:g}..{high:g}); give it in USD "
                "or in billions of USD")


def import_fundamentals(store: Store, path: Path) -> ImportResult:
    """Validate, normalise units of and publish point-in-time fundamentals."""
    base = store.current_version()
    path = Path(path)
    frame, first = _read(path)
    _require(frame, path, ("symbol", "as_of"))
    notes: list[str] = []
    dropped = [c for c in frame.columns if c in TEXT_COLUMNS]
    if dropped:
        notes.append(f"descriptive column(s) not imported: {', '.join(dropped)}")
    numeric = [c for c in frame.columns if c not in ("symbol", "as_of", *TEXT_COLUMNS)]
    if not numeric:
        raise DataValidationError(f"{path}: no numeric columns besides symbol and as_of")
    columns = {"symbol": _symbols(frame, path, first), "as_of": _as_of(frame, path, first)}
    for name in numeric:
        columns[name] = _numeric(frame, name, path, first)
    out = pl.DataFrame(columns).with_row_index("_row")
    dup = out.filter(~pl.struct("symbol", "as_of").is_first_distinct())
    if dup.height:
        row = dup.row(0, named=True)
        raise DataValidationError(
            f"{path}: row {row['_row'] + first}: duplicate (symbol, as_of) "
            f"({row['symbol']}, {row['as_of']})")
    for name in (c for c in NON_NEGATIVE if c in numeric):
        neg = out.filter(pl.col(name) < 0)
        if neg.height:
            row = neg.row(0, named=True)
            raise DataValidationError(
                f"{path}: row {row['_row'] + first}: negative {name} for {row['symbol']}")
    out, meta, unit_notes = _rescale(out.drop("_row"))
    notes.extend(unit_notes)
    _check_market_cap_scale(out, path)
    nulls = {c: n for c, n in zip(out.columns, out.null_count().row(0), strict=True) if n}
    if nulls:
        notes.append("missing values: " + ", ".join(f"{c} {n}" for c, n in nulls.items()))
    out = out.sort("symbol", "as_of")
    as_of = out.get_column("as_of")
    meta.update(symbols=out.get_column("symbol").n_unique(), as_of_min=str(as_of.min()),
                as_of_max=str(as_of.max()), point_in_time="usable from as_of on")
    version = _publish(store, base, "fundamentals", FUNDAMENTALS, out, path, meta)
    return ImportResult("fundamentals", path, out.height, meta["symbols"], version, notes)


def fundamentals_as_of(fundamentals: pl.DataFrame, keys: pl.DataFrame) -> pl.DataFrame:
    """`keys` (symbol, date) with the latest fundamentals row whose as_of <= date (or nulls).

    Never looks ahead: a row becomes visible on its as_of date, not before.
    """
    right = fundamentals.sort("as_of")
    left = keys.with_row_index("_order").sort("date")
    joined = left.join_asof(right, left_on="date", right_on="as_of", by="symbol",
                            strategy="backward")
    return joined.sort("_order").drop("_order")
