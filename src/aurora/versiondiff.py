"""What changed between two versions of the store: `StoreView.diff` / `aurora.diff`.

Every comparison is from `before` to `after`: `added` is in `after` only, `removed` in
`before` only. Files are compared by the sha256 their manifests record; a table is read only
when its sha256 differs (an identical file gives empty row frames without a read). Rows are
matched on (symbol, date) with polars joins over lazy scans, so the diff stays vectorised on
millions of rows; two values are equal when they are exactly equal (no tolerance), a null
equals a null and NaN equals NaN. Only the columns both versions have are compared; a column
present in one version only is reported by `feature_columns` (features) and otherwise left
out of the comparison. A file held by one version only compares as an empty table: all its
rows are `added` (or `removed`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from aurora.errors import StoreError, first_line
from aurora.store import files
from aurora.store.datasets import dataset_digest

if TYPE_CHECKING:
    from aurora.notebook import StoreView

KEYS = ("symbol", "date")
SHOWN = 5  # names listed in a summary line before "and N more"
_IN_BEFORE, _IN_AFTER, _AFTER = "__in_before", "__in_after", "__after"
_DIFFERS = "__differs__"

FILES_SCHEMA: dict[str, pl.DataType] = {
    "name": pl.String(), "change": pl.String(), "sha256_before": pl.String(),
    "sha256_after": pl.String(),
}
SYMBOLS_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String(), "change": pl.String(), "source": pl.String()}
DATES_SCHEMA: dict[str, pl.DataType] = {"date": pl.Date(), "change": pl.String()}
ROWS_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String(), "date": pl.Date(), "change": pl.String(),
    "columns": pl.List(pl.String())}
COLUMNS_SCHEMA: dict[str, pl.DataType] = {"column": pl.String(), "change": pl.String()}


@dataclass(frozen=True, eq=False, repr=False)
class VersionDiff:
    """The changes from version `before` to `after`, as polars frames (all sorted):

    - files: name, change (added | removed | changed | same), sha256_before, sha256_after;
    - symbols: symbol, change (added | removed), source (`prices`: the symbols with bars
      in the prices; `universe`: the universe each version records);
    - dates: date, change (added | removed): sessions with bars in one version only;
    - prices: symbol, date, change (added | removed | changed), columns (for `changed`: the
      columns whose value differs, e.g. ["close"]; null otherwise);
    - feature_columns: column, change (added | removed): f_* columns of one version only;
    - features: symbol, date, change, columns: as `prices`, over the common feature columns.
    """

    before: str
    after: str
    files: pl.DataFrame
    symbols: pl.DataFrame
    dates: pl.DataFrame
    prices: pl.DataFrame
    feature_columns: pl.DataFrame
    features: pl.DataFrame

    def __repr__(self) -> str:
        return f"VersionDiff({'; '.join(self.summary_lines())})"

    @property
    def unchanged(self) -> bool:
        """True when every file of both versions is byte-identical and the universe is
        the same."""
        return bool((self.files["change"] == "same").all()) and self.symbols.height == 0

    def summary_lines(self) -> list[str]:
        """A few human-readable lines (no printing here): which files changed, then the
        symbols, dates, price rows and feature columns/rows that did."""
        lines = [f"{self.before} -> {self.after}"]
        changed = self.files.filter(pl.col("change") != "same")
        if changed.height == 0:
            lines.append(f"files: all {self.files.height} the same")
        else:
            lines.append("files: " + ", ".join(
                f"{n} {c}" for n, c in changed.select("name", "change").iter_rows()))
        for source in ("prices", "universe"):
            part = self.symbols.filter(pl.col("source") == source)
            for change in ("added", "removed"):
                names = part.filter(pl.col("change") == change)["symbol"].to_list()
                if names:
                    lines.append(f"symbols {change} ({source}): {_listed(names)}")
        for change in ("added", "removed"):
            days = self.dates.filter(pl.col("change") == change)["date"]
            if days.len():
                span = (f"{days.min()}" if days.len() == 1
                        else f"{days.len()}, {days.min()} .. {days.max()}")
                lines.append(f"dates {change}: {span}")
        lines += _rows_line("prices", self.prices)
        for change in ("added", "removed"):
            names = self.feature_columns.filter(pl.col("change") == change)["column"]
            if names.len():
                lines.append(f"feature columns {change}: {_listed(names.to_list())}")
        lines += _rows_line("features", self.features)
        return lines


def diff_views(before: StoreView, after: StoreView) -> VersionDiff:
    """The VersionDiff from view `before` to view `after` (module docstring). Files are read
    through the views, so a corrupt file raises StoreError naming it and its version."""
    table = file_changes(before, after)
    prices_changed = _prices_sha(before) != _prices_sha(after)
    features_changed = (dataset_digest(before.manifest, files.FEATURES_DATASET, files.FEATURES)
                        != dataset_digest(after.manifest, files.FEATURES_DATASET, files.FEATURES))
    old_prices = _scan(before, files.PRICES) if prices_changed else None
    new_prices = _scan(after, files.PRICES) if prices_changed else None
    old_features = _scan(before, files.FEATURES) if features_changed else None
    new_features = _scan(after, files.FEATURES) if features_changed else None
    where = f"the prices of {before.version} and {after.version}"
    try:
        if prices_changed:
            old_p, new_p = _aligned(old_prices, new_prices)
            price_rows = row_changes(old_p, new_p, KEYS)
            symbols = key_changes(old_p, new_p, "symbol").with_columns(source=pl.lit("prices"))
            dates = key_changes(old_p, new_p, "date")
        else:
            price_rows = pl.DataFrame(schema=ROWS_SCHEMA)
            symbols = pl.DataFrame(schema=SYMBOLS_SCHEMA)
            dates = pl.DataFrame(schema=DATES_SCHEMA)
        where = f"{files.FEATURES} of {before.version} and {after.version}"
        if features_changed:
            columns = column_changes(old_features, new_features, KEYS)
            old_f, new_f = _aligned(old_features, new_features)
            feature_rows = row_changes(old_f, new_f, KEYS)
        else:
            columns = pl.DataFrame(schema=COLUMNS_SCHEMA)
            feature_rows = pl.DataFrame(schema=ROWS_SCHEMA)
    except pl.exceptions.PolarsError as exc:
        first = first_line(exc, 500)
        raise StoreError(f"cannot compare {where}: {first}") from None
    universe = universe_changes(before.universe(), after.universe())
    symbols = pl.concat([symbols.select(SYMBOLS_SCHEMA.keys()), universe]).sort(
        "symbol", "source")
    return VersionDiff(before.version, after.version, table, symbols, dates, price_rows,
                       columns, feature_rows)


def file_changes(before: StoreView, after: StoreView) -> pl.DataFrame:
    """name, change, sha256_before, sha256_after for every file of either manifest."""
    old, new = before.manifest.files, after.manifest.files
    rows = []
    for name in sorted(set(old) | set(new)):
        sha_old = old[name].sha256 if name in old else None
        sha_new = new[name].sha256 if name in new else None
        change = ("added" if sha_old is None else "removed" if sha_new is None
                  else "same" if sha_old == sha_new else "changed")
        rows.append((name, change, sha_old, sha_new))
    return pl.DataFrame(rows, schema=FILES_SCHEMA, orient="row")


def row_changes(before: pl.LazyFrame, after: pl.LazyFrame, keys: Sequence[str]
                ) -> pl.DataFrame:
    """keys..., change (added | removed | changed), columns: one row per key whose row is
    in one frame only or differs in a column both frames have (exact equality, null ==
    null). One full join on `keys`; keys must be unique in each frame. Sorted by keys."""
    keys = list(keys)
    old_schema, new_schema = before.collect_schema(), after.collect_schema()
    common = [c for c in new_schema.names() if c in old_schema and c not in keys]
    left = before.select(*keys, *common).with_columns(pl.lit(True).alias(_IN_BEFORE))
    right = after.select(*keys, *common).with_columns(pl.lit(True).alias(_IN_AFTER))
    joined = left.join(right, on=keys, how="full", coalesce=True, suffix=_AFTER)
    # the per-column flags are computed once, the column lists only for the rows kept
    flags = {c: f"{_DIFFERS}{c}" for c in common}
    marked = joined.select(*keys, _IN_BEFORE, _IN_AFTER, *(
        (~_equal(c, old_schema[c], new_schema[c])).alias(flag) for c, flag in flags.items()))
    any_differs = pl.any_horizontal(*flags.values()) if flags else pl.lit(False)
    change = (pl.when(pl.col(_IN_BEFORE).is_null()).then(pl.lit("added"))
              .when(pl.col(_IN_AFTER).is_null()).then(pl.lit("removed"))
              .when(any_differs).then(pl.lit("changed"))
              .otherwise(pl.lit(None, pl.String())))
    names = (pl.concat_list([pl.when(pl.col(flag)).then(pl.lit(c)) for c, flag in flags.items()])
             .list.drop_nulls() if flags else pl.lit(None, pl.List(pl.String())))
    return (marked.with_columns(change.alias("change"))
            .filter(pl.col("change").is_not_null())
            .select(*keys, "change", pl.when(pl.col("change") == "changed").then(names)
                    .alias("columns"))
            .sort(keys).collect())


def key_changes(before: pl.LazyFrame, after: pl.LazyFrame, column: str) -> pl.DataFrame:
    """column, change (added | removed): the distinct values of `column` found in one frame
    only (reads that column alone). Sorted by value."""
    old = before.select(column).unique()
    new = after.select(column).unique()
    added = new.join(old, on=column, how="anti").with_columns(change=pl.lit("added"))
    removed = old.join(new, on=column, how="anti").with_columns(change=pl.lit("removed"))
    return pl.concat([added, removed]).sort(column).collect()


def column_changes(before: pl.LazyFrame | None, after: pl.LazyFrame | None,
                   keys: Sequence[str]) -> pl.DataFrame:
    """column, change (added | removed): the non-key columns of one frame only (None: a
    file the version does not hold, so every column of the other frame counts)."""
    old = [c for c in _names(before) if c not in keys]
    new = [c for c in _names(after) if c not in keys]
    rows = [(c, "added") for c in new if c not in old] + [
        (c, "removed") for c in old if c not in new]
    return pl.DataFrame(rows, schema=COLUMNS_SCHEMA, orient="row").sort("column")


def universe_changes(before: Sequence[str], after: Sequence[str]) -> pl.DataFrame:
    """symbol, change, source="universe": symbols recorded in one universe only."""
    old = pl.DataFrame({"symbol": list(before)}, schema={"symbol": pl.String()}).unique()
    new = pl.DataFrame({"symbol": list(after)}, schema={"symbol": pl.String()}).unique()
    added = new.join(old, on="symbol", how="anti").with_columns(change=pl.lit("added"))
    removed = old.join(new, on="symbol", how="anti").with_columns(change=pl.lit("removed"))
    return pl.concat([added, removed]).with_columns(source=pl.lit("universe")).select(
        SYMBOLS_SCHEMA.keys()).sort("symbol")


def _prices_sha(view: StoreView) -> str | None:
    entry = view.manifest.prices_entry()
    return entry.sha256 if entry is not None else None


def _scan(view: StoreView, name: str) -> pl.LazyFrame | None:
    """The view's scan of `name`, or None when its version does not hold the file."""
    return view.scan(name) if view.holds(name) else None


def _names(frame: pl.LazyFrame | None) -> list[str]:
    return [] if frame is None else frame.collect_schema().names()


def _aligned(before: pl.LazyFrame | None, after: pl.LazyFrame | None
             ) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Both sides as frames; a missing side becomes an empty frame of the other's schema."""
    if before is None and after is None:
        empty = pl.LazyFrame(schema={"symbol": pl.String(), "date": pl.Date()})
        return empty, empty
    if before is None:
        assert after is not None
        return pl.LazyFrame(schema=after.collect_schema()), after
    if after is None:
        return before, pl.LazyFrame(schema=before.collect_schema())
    return before, after


def _equal(column: str, old: pl.DataType, new: pl.DataType) -> pl.Expr:
    """Null-aware exact equality of `column` before and after; values of unrelated types
    (say a string and a number) are compared as text."""
    a, b = pl.col(column), pl.col(column + _AFTER)
    if old != new and not (old.is_numeric() and new.is_numeric()):
        a, b = a.cast(pl.String()), b.cast(pl.String())
    return a.eq_missing(b)


def _listed(names: Sequence[str]) -> str:
    shown = ", ".join(str(n) for n in names[:SHOWN])
    return shown + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def _rows_line(label: str, rows: pl.DataFrame) -> list[str]:
    """'<label>: N added, N removed, N changed (first SYM DATE: cols)' or nothing."""
    if rows.height == 0:
        return []
    counts = dict(rows.group_by("change").len().iter_rows())
    parts = [f"{counts.get(c, 0)} {c}" for c in ("added", "removed", "changed")]
    line = f"{label} rows: " + ", ".join(parts)
    changed = rows.filter(pl.col("change") == "changed")
    if changed.height:
        symbol, day, _, cols = changed.row(0)
        line += f" (first {symbol} {day}: {_listed(cols)})"
    return [line]
