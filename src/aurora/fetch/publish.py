"""The fetch stage's side of the store: read what is stored, publish a new version.

Contract:
- `load_stored` returns the stored prices only when they come from the same source
  (`aurora.fetch.source`): prices from another URL, or synthetic prices when these are not
  (and the reverse), raise ConfigError saying what to do, unless `new_history` is asked
  for; another adjustment or feed, or `new_history`, starts from scratch and says why
  (`Stored.refetch_reason`, also a warning).
- `unchanged` tells whether merged prices, actions, universe, source and the symbols found
  inactive at the server equal what the version read holds (then the fetch publishes
  nothing).
- `publish_fetch` writes the prices (`aurora.store.bars`: only the years whose bars
  changed), corporate_actions.parquet, validation.json,
  fetch_report.json, universe.txt and the quarantine record (quarantine.json, no file when
  empty: `aurora.quarantine.write_quarantine`) in ONE store transaction over the version the fetch
  read (so `latest` moves only when all are written, and never over a version published
  meanwhile), records the universe in the manifest, leaves out the features built from the
  previous prices (a version never pairs features with other prices), and adds a default
  sector_map.parquet (meta source=default) when the store has none.
- Nothing here prints.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from aurora.atomic import atomic_write_json, atomic_write_parquet, atomic_write_text
from aurora.errors import ConfigError
from aurora.fetch.corporate_actions import CA_SCHEMA, conform_actions
from aurora.fetch.source import PriceSource, stored_source
from aurora.quarantine import QuarantineRecord, write_quarantine
from aurora.schemas import CORPORATE_ACTIONS_TABLE, read_table
from aurora.store import Store, Transaction, UniverseRecord
from aurora.store.bars import read_prices, write_prices
from aurora.store.files import (
    CORPORATE_ACTIONS,
    FEATURE_FILES,
    FETCH_REPORT,
    SECTOR_MAP,
    UNIVERSE,
    VALIDATION,
)
from aurora.universe import Universe, default_sectors
from aurora.validation.inactive import INACTIVE_META


@dataclass
class Stored:
    """What the current version holds for the fetch stage."""

    prices: pl.DataFrame | None = None
    actions: pl.DataFrame | None = None
    history_start: dt.date | None = None
    warnings: list[str] = field(default_factory=list)
    version: str | None = None  # the version this was read from (publication checks it)
    source: PriceSource | None = None  # where the stored prices came from (None: no prices)
    refetch_reason: str | None = None  # why the stored prices are not used, if they are not
    actions_stale: bool = False  # the stored actions were kept after a failed actions fetch
    universe: UniverseRecord | None = None  # the universe recorded in `version`
    prices_meta: dict[str, Any] = field(default_factory=dict)  # the prices' manifest entry


# the prices' manifest keys that, with the data, make two fetch versions the same
_SIGNATURE = ("source_url", "feed", "adjustment", "synthetic", "history_start", INACTIVE_META)


def load_stored(store: Store, source: PriceSource, *, new_history: bool = False) -> Stored:
    """Stored prices/actions usable as the base of an incremental fetch from `source`.

    Raises ConfigError when the store holds prices of another origin (URL, or synthetic vs
    not) and `new_history` is False; StoreError when a stored file does not match its
    manifest; DataValidationError when it is unreadable or of another schema
    (`aurora.schemas.read_table`). See the module docstring.
    """
    out = Stored(version=store.current_version())
    if out.version is None:
        return out
    manifest = store.manifest(out.version)
    entry = manifest.prices_entry()
    if entry is None:
        return out
    out.universe = store.universe(out.version)
    out.prices_meta = {key: entry.meta(key) for key in _SIGNATURE}
    old = out.source = stored_source(store, out.version)
    assert old is not None
    if not old.same_origin(source):
        if not new_history:
            raise ConfigError(
                f"{store.root} holds prices fetched from {old.origin()}; fetching from "
                f"{source.origin()} would mix sources: use another --data-dir, or pass "
                "--new-history to start a new history here")
        out.refetch_reason = (f"new history: the stored prices from {old.origin()} are "
                              f"replaced by prices from {source.origin()} only")
    elif new_history:
        out.refetch_reason = "new history: the stored prices are not used (--new-history)"
    elif old.adjustment != source.adjustment or (old.feed is not None
                                                 and old.feed != source.feed):
        out.refetch_reason = (
            f"stored prices were fetched with adjustment={old.adjustment}, feed={old.feed}; "
            f"fetching everything again with adjustment={source.adjustment}, "
            f"feed={source.feed}")
    if out.refetch_reason is not None:
        out.warnings.append(out.refetch_reason)
        return out
    out.prices = read_prices(store, out.version)
    start = entry.meta("history_start") or entry.meta("date_min")
    out.history_start = dt.date.fromisoformat(start) if start else None
    actions = store.verified_path(CORPORATE_ACTIONS, out.version)
    if actions is not None:
        out.actions = read_table(actions, CORPORATE_ACTIONS_TABLE, f"version {out.version}")
        out.actions_stale = bool(manifest.files[CORPORATE_ACTIONS].meta("stale", False))
    return out


def same_rows(a: pl.DataFrame, b: pl.DataFrame, key: list[str]) -> bool:
    """True when a and b hold the same rows (any order; columns by name), keyed by `key`."""
    if set(a.columns) != set(b.columns) or a.height != b.height:
        return False
    return a.sort(key).equals(b.select(a.columns).sort(key))


def unchanged(stored: Stored, *, prices: pl.DataFrame, actions: pl.DataFrame,
              universe: Universe, prices_meta: dict[str, Any], actions_stale: bool) -> bool:
    """True when publishing would repeat the version read: the same prices (every value),
    the same corporate actions (by id), the same universe record, the same source and
    history start in the prices' entry, and the same staleness of the actions."""
    if stored.prices is None or stored.version is None:
        return False
    if stored.universe != universe.record() or stored.actions_stale != actions_stale:
        return False
    if {k: stored.prices_meta.get(k) for k in _SIGNATURE} != {
            k: prices_meta.get(k) for k in _SIGNATURE}:
        return False
    old_actions = stored.actions if stored.actions is not None else pl.DataFrame(schema=CA_SCHEMA)
    return (same_rows(stored.prices, prices, ["symbol", "date"])
            and same_rows(conform_actions(old_actions), conform_actions(actions), ["id"]))


def add_default_sector_map(txn: Transaction, store: Store, base: str | None,
                           universe: Universe) -> None:
    """Write Aurora's default sector map (the universe's own sectors first) into a new
    version whose base has no sector map."""
    if store.file_path(SECTOR_MAP, base) is not None:
        return
    sectors = {**default_sectors(), **dict(universe.sectors)}
    frame = pl.DataFrame({"symbol": list(sectors), "sector": list(sectors.values())},
                         schema={"symbol": pl.String, "sector": pl.String}).sort("symbol")
    atomic_write_parquet(txn.path(SECTOR_MAP), frame)
    txn.describe(SECTOR_MAP, rows=frame.height, source="default")


def publish_fetch(
    store: Store,
    *,
    prices: pl.DataFrame,
    actions: pl.DataFrame,
    universe: Universe,
    validation: dict[str, Any],
    fetch_report: dict[str, Any],
    params: dict[str, Any],
    history_start: dt.date,
    base_version: str | None,
    source: PriceSource | None = None,
    actions_stale: bool = False,
    quarantine: QuarantineRecord | None = None,
    inactive: dict[str, str | None] | None = None,
    previous: pl.DataFrame | None = None,
) -> str:
    """Publish one fetch version (see module doc); return its version id.

    `source` is recorded in the prices' entry (`source_url`, `feed`, `adjustment`,
    `synthetic`; without it, feed and adjustment come from `params`), and so are the
    universe symbols the trading API lists as inactive, `inactive` (symbol -> the ISO date
    of its last bar, or None; no key when empty: `aurora.validation.inactive`);
    `actions_stale` marks corporate_actions.parquet as kept from an earlier fetch after its
    fetch failed (meta `stale`); `quarantine` is the record to publish (None: the base's is
    inherited as it is); `previous`: the bars of `base_version`, when read, so that only
the years whose bars changed are written again (`aurora.store.bars.write_prices`). Raises
StoreError, publishing nothing, when `latest` no longer is
    `base_version` (the version the incremental merge started from).
    """
    origin = source.meta() if source is not None else {
        "adjustment": params["adjustment"], "feed": params["feed"]}
    with store.transaction("fetch", base=base_version, params=params,
                           universe=universe.record()) as txn:
        write_prices(txn, prices, previous=previous, meta={
            "history_start": history_start.isoformat(), **origin,
            **({INACTIVE_META: dict(inactive)} if inactive else {})})
        atomic_write_parquet(txn.path(CORPORATE_ACTIONS), actions)
        txn.describe(CORPORATE_ACTIONS, rows=actions.height, stale=actions_stale)
        atomic_write_json(txn.path(VALIDATION), validation)
        txn.describe(VALIDATION, ok=validation.get("ok"))
        atomic_write_json(txn.path(FETCH_REPORT), fetch_report)
        atomic_write_text(txn.path(UNIVERSE), "".join(f"{s}\n" for s in universe.symbols))
        txn.describe(UNIVERSE, rows=len(universe), source=universe.source)
        if quarantine is not None:
            write_quarantine(txn, quarantine)
        # A version never pairs features with other prices: the features of the base were
        # built from the old prices, so they are left out until the next build.
        for name in FEATURE_FILES:
            txn.remove(name)
        add_default_sector_map(txn, store, base_version, universe)
    version = store.current_version()
    assert version is not None
    return version
