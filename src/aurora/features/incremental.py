"""Daily incremental builds: compute only the sessions the store gained since the last build.

A build may start from the features of the last version that holds them (`previous_build`)
when everything they were made from is unchanged up to their last date: the same feature
set (registry version and feature-set hash), the same universe (and membership), the same
sector map and fundamentals, and the same adjusted prices (raw bars and corporate actions
adjusted point in time) on every session up to that date. Prices are adjusted forward from
each symbol's first bar, so a new dividend or split changes no earlier adjusted price and
keeps the build incremental; a restated bar, a late corporate action with an earlier
ex-date, a new symbol or a changed feature set does not, and `plan_incremental` says which.

The rows from `Incremental.since` on (the first new session, or earlier, below) are computed
from a tail of the prices reaching `max look-back` sessions before it (every value at t
reads only sessions t - look-back .. t), told each symbol's first and last bar in the whole
history (`compute_panel(spans=)`: those the last build recorded, widened by the tail), and
replace the old rows from that session on. A symbol that had no bar on the last build's
last sessions (no trade, a halt) and has one among the new sessions reopens its span: the
sessions it missed are inside it now, so it has rows there, and it may enter those dates'
cross-sections; `since` is then the first session it missed. The build publishes the parts
of the years from `since` on and keeps the others (`aurora.store.datasets`). When the last
build stored its gates' summary by year (`FEATURES_SUMMARY`, checked against the sha256 its
meta records), only the old parts of those years are read, and the summary of the years
before them is taken from it (`Incremental.summarize`). Running-window
sums start afresh in the tail, so a value may differ from a full build in its last bits
(`tests/features/test_incremental.py`: to 1e-9 relative on every cell at random cut points).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from aurora.adjusted import load_adjusted_prices
from aurora.atomic import atomic_write_parquet, sha256_file
from aurora.calendar import next_session, sessions_back
from aurora.errors import StoreError
from aurora.features.compute import FeatureFrame
from aurora.features.gatestats import (
    FrameSummary,
    combine,
    summarize,
    summary_of_table,
    summary_table,
)
from aurora.features.panel import extend_spans, spans_from_record
from aurora.schemas import FEATURES_TABLE, sorted_by_key
from aurora.store import Store
from aurora.store.datasets import dataset_parts, has_dataset, read_dataset
from aurora.store.files import (
    CORPORATE_ACTIONS,
    FEATURES,
    FEATURES_DATASET,
    FEATURES_META,
    FEATURES_SUMMARY,
    PRICES,
    PRICES_INDEX,
)
from aurora.universe import Universe

_KEY = ["symbol", "date"]


@dataclass(frozen=True)
class Incremental:
    """Start from `old` (the features of version `base`, through `last`): compute the
    sessions from `since` on, from prices dated `tail_start` or later. `reopened`: the
    symbols without a bar on `last` that have one after it, each with the first session
    after its last bar up to `last` (module docstring). `old` holds every old row, or,
    with `summary_before` (the last build's stored summary table), only those of the
    years from `since`'s on."""

    base: str
    old: pl.DataFrame
    old_meta: dict[str, Any]
    last: dt.date
    first_new: dt.date
    tail_start: dt.date
    partitioned: bool = True
    reopened: dict[str, dt.date] = field(default_factory=dict)
    summary_before: pl.DataFrame | None = None

    @property
    def since(self) -> dt.date:
        """The first session whose rows are computed: the first new one, or the first
        session a reopened symbol missed."""
        return min([self.first_new, *self.reopened.values()])

    def counted_since(self, symbols: Sequence[str]) -> dict[str, dt.date]:
        """Each symbol's first row that the old build did not have: `first_new`, or the
        first session a reopened symbol missed (`compute_panel(counted_since=)`)."""
        return {s: self.reopened.get(s, self.first_new) for s in symbols}

    def rewrite(self, merged: pl.DataFrame) -> dict[str, Any]:
        """`write_dataset`'s arguments for the `merge`d rows: the parts of the years from
        `since`'s to the last are written (a year without rows has none), the others kept
        from `base`; a base in the single-file layout is rewritten whole (its `old` holds
        every row then)."""
        if not self.partitioned:
            return {}
        last = merged.get_column("date").max()
        end = max(last.year if isinstance(last, dt.date) else 0, self.since.year)
        return {"years": range(self.since.year, end + 1), "base": self.base}

    def tail(self, prices: pl.DataFrame, symbols: Sequence[str]) -> pl.DataFrame:
        """The prices from the last date on which one of `symbols` (the universe) has a bar,
        at or before `tail_start` (compute them for those symbols with `spans` of the whole
        history, `since=self.since` and `counted_since()`: `compute_panel`)."""
        dates = prices.filter(pl.col("symbol").is_in(list(symbols))).get_column("date")
        start = dates.filter(dates <= self.tail_start).max() or self.tail_start
        return prices.filter(pl.col("date") >= start)

    def spans(self, tail: pl.DataFrame) -> pl.DataFrame | None:
        """Each symbol's first and last bar in the whole history (`compute_panel(spans=)`):
        those the last build recorded, widened by `tail`, so the history is not read again;
        None when the last build recorded none (the caller reads them from the prices).
        Valid because the prices up to `last` are the last build's (`plan_incremental`)."""
        recorded = spans_from_record(self.old_meta.get("bar_spans"))
        return None if recorded is None else extend_spans(recorded, tail)

    def merge(self, tail: FeatureFrame) -> FeatureFrame:
        """The whole panel's FeatureFrame: the old rows and `tail`'s new ones; counts over
        the whole history (the old build's plus those of the rows it did not have: `tail`
        computed with `counted_since()`)."""
        meta = self.old_meta
        old_fallback = dict(meta.get("turnover_fallback_rows") or {})
        for symbol, rows in tail.turnover_fallback.items():
            old_fallback[symbol] = old_fallback.get(symbol, 0) + rows
        info = replace(tail.info, unknown_sector=list(meta.get("unknown_sector_symbols") or []),
                       shares_source=meta.get("shares_source", tail.info.shares_source))
        outside = (meta.get("universe") or {}).get("rows_outside_membership") or 0
        return FeatureFrame(self.combine(tail.features), info, old_fallback,
                            tail.ignored_symbols, outside + tail.outside_membership)

    def summarize(self, merged: pl.DataFrame) -> FrameSummary:
        """The gates' summary of the whole panel, from `merged` (`merge`'s rows): with a
        stored summary, that of the years before `since`'s taken from it, combined with
        `merged`'s, which then holds only the years from `since`'s on."""
        summary = summarize(merged)
        if self.summary_before is None:
            return summary
        try:
            before = summary_of_table(self.summary_before, self.since.year, summary)
        except ValueError as exc:  # the meta named this file: it was written for these
            raise StoreError(f"{FEATURES_SUMMARY} of version {self.base}: {exc}; run "
                             "`aurora build --full`") from None
        if not summary.nulls_by_date.height:  # no rows from `since`'s year on
            return before
        return combine([before, summary]) if before.nulls_by_date.height else summary

    def combine(self, new_rows: pl.DataFrame) -> pl.DataFrame:
        """The old rows before `since` and the new rows from it, in no particular order:
        what reads them does not need one (the gates' summary adds up, and
        `store.datasets.write_dataset` sorts each year's part by (symbol, date)); sorting
        the whole panel would cost more than the rest of a daily build."""
        kept = self.old.filter(pl.col("date") < self.since)
        fresh = new_rows.filter(pl.col("date") >= self.since).select(kept.columns)
        return pl.concat([kept, fresh])


def previous_build(store: Store, version: str) -> str | None:
    """The version that wrote the newest features in `version`'s lineage (whose prices are
    the ones they were built from), or None."""
    for manifest in store.lineage(version):
        if (FEATURES_META in manifest.files
                and has_dataset(manifest, FEATURES_DATASET, legacy=FEATURES)):
            writer = store.origin(FEATURES_META, manifest.version)
            return writer.version if writer is not None else manifest.version
    return None


def plan_incremental(store: Store, version: str, prices: pl.DataFrame,
                     sha256: dict[str, str], universe: Universe, feature_set_hash: str,
                     registry_version: str, max_lookback: int
                     ) -> tuple[Incremental | None, str]:
    """(the incremental plan, why) or (None, why a full build is needed)."""
    base = previous_build(store, version)
    if base is None:
        return None, "no earlier build"
    meta_path = store.verified_path(FEATURES_META, base)
    assert meta_path is not None
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("registry_version") != registry_version:
        return None, "the feature registry changed"
    if meta.get("feature_set_hash") != feature_set_hash:
        return None, "the feature set changed (--features)"
    if store.universe(base) != universe.record():
        return None, "the universe changed"
    # prices and corporate actions are compared adjusted, below: new sessions and new
    # actions are expected, a change before the last build's date is not
    compared = {PRICES, PRICES_INDEX, CORPORATE_ACTIONS}
    old_inputs = {k: v.get("sha256") for k, v in (meta.get("inputs") or {}).items()
                  if k not in compared}
    for name, sha in sha256.items():
        if name not in compared and old_inputs.get(name) != sha:
            return None, f"{name} changed"
    if any(name not in sha256 for name in old_inputs):
        return None, "an input of the last build is gone"
    last = dt.date.fromisoformat(meta["date_range"][1])
    recorded = meta.get("prices_digest") or {}
    if (recorded.get("through") != str(last)
            or recorded.get("sha256") != prices_digest(prices, last)):
        old_prices = load_adjusted_prices(store, base).prices
        before = prices.filter(pl.col("date") <= last).sort(_KEY)
        if not before.equals(old_prices.filter(pl.col("date") <= last).sort(_KEY)):
            changed = _changed_symbols(before, old_prices.filter(pl.col("date") <= last))
            return None, f"prices up to {last} changed ({changed})"
    first_new = next_session(last)
    reopened = reopened_spans(prices, last, universe.symbols)
    since = min([first_new, *reopened.values()])
    partitioned = bool(dataset_parts(store.manifest(base), FEATURES_DATASET))
    stored = stored_summary(store, base, meta) if partitioned else None
    # in the parts' order: the merge needs no order, and the dataset writer sorts each part
    old = read_dataset(store, FEATURES_DATASET, base, FEATURES_TABLE, legacy=FEATURES,
                       sort=False, start=dt.date(since.year, 1, 1) if stored is not None
                       else None)
    incremental = Incremental(base, old, meta, last, first_new,
                              sessions_back(since, max_lookback), partitioned, reopened,
                              stored)
    why = f"from the build of version {base} (through {last})"
    if reopened:
        shown = ", ".join(sorted(reopened)[:5]) + (f", +{len(reopened) - 5} more"
                                                   if len(reopened) > 5 else "")
        why += f"; recomputed from {since}: {shown} traded again after missing sessions"
    return incremental, why


def write_summary(path: Path, summary: FrameSummary) -> str:
    """Write `summary`'s table (what the next build's `stored_summary` reads) atomically to
    `path`; its sha256, for the build's meta (`summary_sha256`)."""
    atomic_write_parquet(path, summary_table(summary))
    return sha256_file(path)


def stored_summary(store: Store, base: str, meta: dict[str, Any]) -> pl.DataFrame | None:
    """The summary table (`gatestats.summary_table`) build `base` stored with its
    features, or None when it stored none or the file is not the one its meta names (a
    build that did not write one inherited an older build's)."""
    entry = store.manifest(base).file(FEATURES_SUMMARY)
    if entry is None or entry.sha256 != meta.get("summary_sha256"):
        return None
    path = store.verified_path(FEATURES_SUMMARY, base)
    assert path is not None
    return pl.read_parquet(path)


def reopened_spans(prices: pl.DataFrame, last: dt.date, symbols: Sequence[str]
                   ) -> dict[str, dt.date]:
    """The `symbols` with a bar after `last` but none on it and one before it, each with
    the session after its last bar up to `last`: the sessions from there to `last` are
    inside its span now. Reads the dates after `last` and on it; the rest only for those."""
    after = prices.filter(pl.col("date") > last).get_column("symbol").unique()
    after = after.filter(after.is_in(pl.Series(list(symbols), dtype=pl.String).implode()))
    on_last = prices.filter(pl.col("date") == last).get_column("symbol")
    candidates = after.filter(~after.is_in(on_last.implode()))
    if candidates.is_empty():
        return {}
    before = (prices.filter(pl.col("symbol").is_in(candidates.implode())
                            & (pl.col("date") < last))
              .group_by("symbol").agg(pl.col("date").max()))
    return {symbol: next_session(day) for symbol, day in before.iter_rows()}


def prices_digest(prices: pl.DataFrame, through: dt.date) -> str:
    """sha256 of the (adjusted) prices dated `through` or earlier, whatever their row order:
    column by column in name order, each its name, type, missing cells and values over the
    rows sorted by (symbol, date). A build records it so that the next one can tell that
    the prices it was made from are unchanged without reading them back; bytes that differ
    for equal values (-0.0) only cost a full comparison."""
    rows = sorted_by_key(prices.filter(pl.col("date") <= through))
    digest = hashlib.sha256()
    for name in sorted(rows.columns):
        column = rows[name]
        digest.update(f"{name}:{column.dtype}:".encode())
        digest.update(np.packbits(column.is_null().to_numpy()).tobytes())
        if column.dtype == pl.String:
            runs = column.fill_null("").rle().struct.unnest()
            digest.update(runs["len"].to_numpy().tobytes())
            digest.update("\0".join(runs["value"].to_list()).encode())
        else:
            digest.update(column.to_physical().fill_null(0).to_numpy().tobytes())
    return digest.hexdigest()


def _changed_symbols(new: pl.DataFrame, old: pl.DataFrame, shown: int = 5) -> str:
    """The symbols whose rows differ, for the reason line."""
    columns = [c for c in new.columns if c in old.columns]
    diff = pl.concat([new.select(columns).join(old.select(columns), on=columns, how="anti"),
                      old.select(columns).join(new.select(columns), on=columns, how="anti")])
    symbols = sorted(diff["symbol"].unique().to_list())
    more = f", +{len(symbols) - shown} more" if len(symbols) > shown else ""
    return f"{', '.join(symbols[:shown])}{more}" if symbols else "columns"
