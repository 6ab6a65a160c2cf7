"""Reconciliation of the stored prices with a second source (`aurora validate --against`).

`reconcile(stored, other, *, rel_tolerance, columns, max_share)` compares two price frames
(the prices schema; `other` is typically `aurora.vendorfiles.read_bars(PATH).bars`, read and
normalised exactly like `aurora import bars`) and returns a `Reconciliation`:

- **Symbols** on one side only are named (`symbol_only_in_store`, `symbol_only_in_other`,
  one row each, with their bar count and date range in `symbols_only`); they are not
  compared further and never fail the check by themselves: the two sources may cover
  different universes.
- **The window**: bars are compared from the later of the two first dates to the earlier of
  the two last dates (the sessions both sources cover); bars outside it are counted
  (`outside_window_store`, `outside_window_other`), not compared.
- **Compared bars** are the (symbol, date) keys of the common symbols inside the window, on
  either side. A key on one side only is `missing_in_store` or `missing_in_other`. A key on
  both sides disagrees in `column` when one value is missing and the other is not, or when
  `|stored - other| / max(|stored|, |other|)` (`rel_diff`; 0 when both are equal) exceeds
  `rel_tolerance`: one `value` row per column.
- **share** = disagreeing bars (missing on one side, or at least one value beyond the
  tolerance) / compared bars. `ok` is True when something was compared and `share <=
  max_share`.

`disagreements` has one row per finding, columns `DISAGREEMENT_SCHEMA` (symbol, date, kind,
column, stored, other, rel_diff; date is null for a symbol-level row, column, stored, other
and rel_diff only for `value` rows), sorted by symbol, date, kind, column. A column that is
absent or entirely missing on one side (a vendor without vwap) is not compared, with a
note. All work is vectorised polars joins and filters.

`reconcile_store(store, other, ...)` reconciles the prices of a store version (default:
latest), read through `Store.verified_path` (a file that does not match its manifest raises
StoreError), and notes when they are not raw bars (an older store fetched adjusted:
differences before a split or dividend are then expected).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import polars as pl

from aurora.errors import DataValidationError, StoreError
from aurora.store import Store
from aurora.store.bars import read_prices

# Prices only by default: vendors count volume differently (consolidated tape or primary
# exchange, odd lots, late reports), so volumes of two honest sources rarely agree.
DEFAULT_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
COMPARABLE = (*DEFAULT_COLUMNS, "volume", "vwap", "trade_count")
# 0.1%: two vendors' official prices may differ by a cent on a low-priced stock; a wrong
# bar (a shifted close, an unadjusted split) is far beyond it
DEFAULT_TOLERANCE = 1e-3
DEFAULT_MAX_SHARE = 0.01
MAX_REPORTED = 10_000  # disagreement rows written into the JSON report
KINDS = ("value", "missing_in_store", "missing_in_other", "symbol_only_in_store",
         "symbol_only_in_other")
DISAGREEMENT_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String(), "date": pl.Date(), "kind": pl.String(), "column": pl.String(),
    "stored": pl.Float64(), "other": pl.Float64(), "rel_diff": pl.Float64(),
}
SYMBOLS_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String(), "kind": pl.String(), "bars": pl.Int64(), "date_min": pl.Date(),
    "date_max": pl.Date(),
}


@dataclass(frozen=True)
class Reconciliation:
    """The outcome of `reconcile` (see the module docstring)."""

    disagreements: pl.DataFrame
    symbols_only: pl.DataFrame
    counts: dict[str, int]
    columns: tuple[str, ...]
    rel_tolerance: float
    max_share: float
    window: tuple[dt.date, dt.date] | None
    notes: tuple[str, ...] = ()
    source: str = "the other source"
    version: str | None = None

    @property
    def compared_bars(self) -> int:
        return self.counts["compared_bars"]

    @property
    def disagreeing_bars(self) -> int:
        return self.counts["disagreeing_bars"]

    @property
    def share(self) -> float:
        """Disagreeing bars / compared bars (0.0 when nothing was compared)."""
        return self.disagreeing_bars / self.compared_bars if self.compared_bars else 0.0

    @property
    def ok(self) -> bool:
        """Something was compared and the share of disagreeing bars is within max_share."""
        return self.compared_bars > 0 and self.share <= self.max_share

    def verdict(self) -> str:
        """One line: what was compared and whether it passed."""
        where = f"store version {self.version}" if self.version else "the store"
        if not self.compared_bars:
            return (f"FAILED: nothing to compare between {where} and {self.source}: no symbol "
                    "and session in common")
        span = f", {self.window[0]}..{self.window[1]}" if self.window else ""
        return (f"{'OK' if self.ok else 'FAILED'}: {self.disagreeing_bars:,} of "
                f"{self.compared_bars:,} compared bars disagree between {where} and "
                f"{self.source} ({_percent(self.share)}, max {_percent(self.max_share)}; "
                f"{self.counts['common_symbols']} symbols{span})")

    def lines(self, limit: int | None = None) -> list[str]:
        """One line per bar-level disagreement (value, missing), in order, at most `limit`:
        `AAPL 2018-03-05 close: store 171.27, other 172.98 (rel diff 9.9e-03)`."""
        rows = self.disagreements.filter(pl.col("date").is_not_null())
        return [_line(row) for row in (rows.head(limit) if limit else rows).iter_rows(
            named=True)]

    def summary_lines(self, max_lines: int = 20) -> list[str]:
        """The verdict, the counts, the symbols on one side only and the first
        disagreements (at most `max_lines` of them). No printing."""
        c = self.counts
        out = [f"reconciliation: {self.verdict()}",
               f"  values beyond a relative {self.rel_tolerance:g} ({', '.join(self.columns)})"
               f": {c['value_bars']:,} bar(s), {c['value_cells']:,} value(s); missing in the "
               f"store: {c['missing_in_store']:,}; missing in the other source: "
               f"{c['missing_in_other']:,}"]
        for kind, side in (("symbol_only_in_store", "the store"),
                           ("symbol_only_in_other", "the other source")):
            only = self.symbols_only.filter(pl.col("kind") == kind)
            if only.height:
                named = [f"{r['symbol']} ({r['bars']} bars {r['date_min']}..{r['date_max']})"
                         for r in only.head(10).iter_rows(named=True)]
                more = f" (+{only.height - 10} more)" if only.height > 10 else ""
                out.append(f"  symbols only in {side} ({only.height}, not compared): "
                           f"{', '.join(named)}{more}")
        if c["outside_window_store"] or c["outside_window_other"]:
            out.append(f"  outside the common window (not compared): "
                       f"{c['outside_window_store']:,} stored bar(s), "
                       f"{c['outside_window_other']:,} bar(s) of the other source")
        out.extend(f"  note: {n}" for n in self.notes)
        shown = self.lines(max_lines)
        if shown:
            out.append("  first disagreements:")
            out.extend(f"    {line}" for line in shown)
            rest = c["disagreeing_rows"] - len(shown)
            if rest > 0:
                out.append(f"    ... {rest:,} more")
        return out

    def failure(self) -> str | None:
        """The one-line reason the check failed, or None when it passed."""
        if self.ok:
            return None
        first = self.lines(1)
        return (f"reconciliation {self.verdict()}" + (f"; first: {first[0]}" if first else ""))

    def to_dict(self, max_rows: int = MAX_REPORTED) -> dict[str, Any]:
        """JSON-able: verdict, settings, counts, symbols on one side, notes and the first
        `max_rows` disagreements (`disagreements_total` says how many there are)."""
        rows = self.disagreements.head(max_rows).with_columns(
            pl.col("date").cast(pl.String)).to_dicts()
        only = self.symbols_only.with_columns(pl.col("date_min", "date_max").cast(pl.String))
        return {
            "ok": self.ok, "source": self.source, "version": self.version,
            "share": self.share, "max_share": self.max_share,
            "rel_tolerance": self.rel_tolerance, "columns": list(self.columns),
            "window": [d.isoformat() for d in self.window] if self.window else None,
            "counts": dict(self.counts), "notes": list(self.notes),
            "symbols_only": only.to_dicts(),
            "disagreements_total": self.disagreements.height,
            "disagreements_truncated": self.disagreements.height > max_rows,
            "disagreements": [{k: _json_value(v) for k, v in r.items()} for r in rows],
        }


def _percent(share: float) -> str:
    return f"{share:.4%}"


def _number(value: float | None) -> str:
    return "missing" if value is None else f"{value:.10g}"


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "nan", "inf": JSON has no such number
    return value


def _line(row: dict[str, Any]) -> str:
    head = f"{row['symbol']} {row['date']}"
    if row["kind"] == "missing_in_store":
        return f"{head}: bar missing in the store (the other source has it)"
    if row["kind"] == "missing_in_other":
        return f"{head}: bar missing in the other source (the store has it)"
    rel = row["rel_diff"]
    diff = f" (rel diff {rel:.2e})" if rel is not None else ""
    return (f"{head} {row['column']}: store {_number(row['stored'])}, other "
            f"{_number(row['other'])}{diff}")


def _prepare(frame: pl.DataFrame, columns: Sequence[str], side: str) -> pl.DataFrame:
    """symbol, date and `columns` as Float64 (a column the frame lacks is all null)."""
    missing = [c for c in ("symbol", "date") if c not in frame.columns]
    if missing:
        raise DataValidationError(f"{side}: missing column(s) {', '.join(missing)} for the "
                                  "reconciliation")
    return frame.select(pl.col("symbol").cast(pl.String), pl.col("date").cast(pl.Date),
                        *(pl.col(c).cast(pl.Float64) if c in frame.columns
                          else pl.lit(None, dtype=pl.Float64).alias(c) for c in columns))


def _empty(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


def reconcile(stored: pl.DataFrame, other: pl.DataFrame, *,
              rel_tolerance: float = DEFAULT_TOLERANCE,
              columns: Sequence[str] = DEFAULT_COLUMNS,
              max_share: float = DEFAULT_MAX_SHARE,
              source: str = "the other source") -> Reconciliation:
    """Compare `stored` with `other` (module docstring). `columns` are among
    open, high, low, close, volume, vwap, trade_count; `source` names the other side in
    lines. ValueError for an unknown column or a negative tolerance or share."""
    columns = tuple(dict.fromkeys(columns))
    unknown = [c for c in columns if c not in COMPARABLE]
    if unknown or not columns:
        raise ValueError(f"columns {', '.join(unknown) or '(none)'}: expected some of "
                         f"{', '.join(COMPARABLE)}")
    if not rel_tolerance >= 0 or not 0 <= max_share <= 1:
        raise ValueError("rel_tolerance must be >= 0 and max_share within 0..1")
    notes: list[str] = []
    s = _prepare(stored, columns, "the store")
    o = _prepare(other, columns, source)
    compared: list[str] = []
    for c in columns:
        absent = [side for side, f in (("the store", s), (source, o))
                  if f.height and f.get_column(c).null_count() == f.height]
        if absent:
            notes.append(f"{c}: no value in {' or '.join(absent)}; not compared")
        else:
            compared.append(c)

    s_symbols = s.group_by("symbol").agg(pl.len().alias("bars"), pl.col("date").min()
                                         .alias("date_min"), pl.col("date").max()
                                         .alias("date_max"))
    o_symbols = o.group_by("symbol").agg(pl.len().alias("bars"), pl.col("date").min()
                                         .alias("date_min"), pl.col("date").max()
                                         .alias("date_max"))
    only = pl.concat([
        s_symbols.join(o_symbols, on="symbol", how="anti").with_columns(
            pl.lit("symbol_only_in_store").alias("kind")),
        o_symbols.join(s_symbols, on="symbol", how="anti").with_columns(
            pl.lit("symbol_only_in_other").alias("kind")),
    ], how="diagonal").select(list(SYMBOLS_SCHEMA)).cast(SYMBOLS_SCHEMA).sort(  # type: ignore[arg-type]
        "symbol", "kind")
    common = s_symbols.join(o_symbols, on="symbol", how="semi").get_column("symbol")

    window: tuple[dt.date, dt.date] | None = None
    if s.height and o.height:
        lo = max(s.get_column("date").min(), o.get_column("date").min())  # type: ignore[type-var]
        hi = min(s.get_column("date").max(), o.get_column("date").max())  # type: ignore[type-var]
        window = (lo, hi) if lo <= hi else None  # type: ignore[assignment,operator]
    shared = pl.col("symbol").is_in(common.implode())
    inside = (shared & pl.col("date").is_between(*window)) if window else pl.lit(False)
    s_in, o_in = s.filter(inside), o.filter(inside)

    joined = s_in.with_columns(pl.lit(True).alias("_s")).join(
        o_in.with_columns(pl.lit(True).alias("_o")), on=["symbol", "date"], how="full",
        coalesce=True, suffix="_other")
    parts = [
        joined.filter(pl.col("_s").is_null()).select(
            "symbol", "date", pl.lit("missing_in_store").alias("kind")),
        joined.filter(pl.col("_o").is_null()).select(
            "symbol", "date", pl.lit("missing_in_other").alias("kind")),
    ]
    both = joined.filter(pl.col("_s").is_not_null() & pl.col("_o").is_not_null())
    for c in compared:
        a, b = pl.col(c), pl.col(f"{c}_other")
        rel = pl.when(a == b).then(0.0).otherwise(
            (a - b).abs() / pl.max_horizontal(a.abs(), b.abs()))
        differs = ((a.is_null() != b.is_null())
                   | (a.is_not_null() & b.is_not_null() & ~(rel <= rel_tolerance)))
        parts.append(both.filter(differs).select(
            "symbol", "date", pl.lit("value").alias("kind"), pl.lit(c).alias("column"),
            a.alias("stored"), b.alias("other"),
            pl.when(rel.is_finite()).then(rel).alias("rel_diff")))
    symbol_rows = only.select("symbol", "kind")
    disagreements = pl.concat([*parts, symbol_rows], how="diagonal").select(
        list(DISAGREEMENT_SCHEMA)).cast(DISAGREEMENT_SCHEMA).sort(  # type: ignore[arg-type]
        "symbol", "date", "kind", "column", nulls_last=False)

    values = disagreements.filter(pl.col("kind") == "value")
    bad_keys = disagreements.filter(pl.col("date").is_not_null()).select(
        "symbol", "date").unique()
    kinds = dict(disagreements.group_by("kind").len().iter_rows())
    counts = {
        "stored_bars": s.height, "other_bars": o.height,
        "stored_symbols": s_symbols.height, "other_symbols": o_symbols.height,
        "common_symbols": common.len(),
        "compared_bars": joined.height, "disagreeing_bars": bad_keys.height,
        "value_bars": values.select("symbol", "date").unique().height,
        "value_cells": values.height,
        **{k: int(kinds.get(k, 0)) for k in KINDS if k != "value"},
        "outside_window_store": s.filter(shared).height - s_in.height,
        "outside_window_other": o.filter(shared).height - o_in.height,
        "disagreeing_rows": disagreements.filter(pl.col("date").is_not_null()).height,
    }
    return Reconciliation(disagreements, only, counts, tuple(compared), rel_tolerance,
                          max_share, window, tuple(notes), source)


def reconcile_store(store: Store, other: pl.DataFrame, *, source: str,
                    version: str | None = None, rel_tolerance: float = DEFAULT_TOLERANCE,
                    columns: Sequence[str] = DEFAULT_COLUMNS,
                    max_share: float = DEFAULT_MAX_SHARE) -> Reconciliation:
    """`reconcile` the prices of `version` (default: latest) with `other`. StoreError when
    the version holds no prices or they do not match the manifest (module docstring)."""
    version = version or store.current_version()
    if version is None:
        raise StoreError(f"{store.root}: the store is empty: run `aurora fetch` or "
                         "`aurora import bars` first")
    stored = read_prices(store, version)
    result = reconcile(stored, other, rel_tolerance=rel_tolerance, columns=columns,
                       max_share=max_share, source=source)
    entry = store.manifest(version).prices_entry()
    adjustment = entry.meta("adjustment") if entry is not None else None
    notes = list(result.notes)
    if adjustment not in (None, "raw"):
        notes.append(f"the stored prices were fetched with adjustment={adjustment} and the "
                     "other source is read as raw bars: bars before a split or dividend "
                     "differ by its factor")
    return replace(result, version=version, notes=tuple(notes))
