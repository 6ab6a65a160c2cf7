"""The fetch stage's side of the store: read what is stored, publish a new version.

Contract:
- `load_stored` returns the stored prices only when they were fetched with the same
  adjustment and feed (otherwise the run starts from scratch and says so in a warning).
- `publish_fetch` writes prices.parquet, corporate_actions.parquet, validation.json,
  fetch_report.json and universe.txt in ONE store transaction over the version the fetch
  read (so `latest` moves only when all are written, and never over a version published
  meanwhile), records the universe in the manifest, and adds a default sector_map.parquet
  (meta source=default) when the store has none.
- Nothing here prints.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from aurora.atomic import atomic_write_json, atomic_write_parquet, atomic_write_text
from aurora.errors import StoreError
from aurora.store import Store
from aurora.store.files import (
    CORPORATE_ACTIONS,
    FETCH_REPORT,
    PRICES,
    SECTOR_MAP,
    UNIVERSE,
    VALIDATION,
)
from aurora.universe import Universe, default_sectors


@dataclass
class Stored:
    """What the current version holds for the fetch stage."""

    prices: pl.DataFrame | None = None
    actions: pl.DataFrame | None = None
    history_start: dt.date | None = None
    warnings: list[str] = field(default_factory=list)
    version: str | None = None  # the version this was read from (publication checks it)


def load_stored(store: Store, *, adjustment: str, feed: str) -> Stored:
    """Stored prices/actions usable as the base of an incremental fetch (see module doc)."""
    out = Stored(version=store.current_version())
    path = store.verified_path(PRICES, out.version)
    if path is None:
        return out
    manifest = store.manifest(out.version)
    entry = manifest.files[PRICES]
    stored_adj = entry.meta("adjustment")
    stored_feed = entry.meta("feed", manifest.params.get("feed"))
    if stored_adj != adjustment or (stored_feed is not None and stored_feed != feed):
        out.warnings.append(
            f"stored prices were fetched with adjustment={stored_adj}, feed={stored_feed}; "
            f"fetching everything again with adjustment={adjustment}, feed={feed}"
        )
        return out
    try:
        out.prices = pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise StoreError(f"{path}: unreadable ({str(exc)[:100]})") from None
    start = entry.meta("history_start") or entry.meta("date_min")
    out.history_start = dt.date.fromisoformat(start) if start else None
    actions = store.verified_path(CORPORATE_ACTIONS, out.version)
    if actions is not None:
        out.actions = pl.read_parquet(actions)
    return out


def _sector_frame(universe: Universe) -> pl.DataFrame:
    sectors = {**default_sectors(), **dict(universe.sectors)}
    return pl.DataFrame(
        {"symbol": list(sectors), "sector": list(sectors.values())},
        schema={"symbol": pl.String, "sector": pl.String},
    ).sort("symbol")


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
) -> str:
    """Publish one fetch version (see module doc); return its version id.

    Raises StoreError, publishing nothing, when `latest` no longer is `base_version` (the
    version the incremental merge started from).
    """
    dates = prices.get_column("date")
    with store.transaction("fetch", base=base_version, params=params,
                           universe=universe.record()) as txn:
        atomic_write_parquet(txn.path(PRICES), prices)
        txn.describe(
            PRICES, rows=prices.height, symbols=prices.get_column("symbol").n_unique(),
            date_min=str(dates.min()), date_max=str(dates.max()),
            sessions=dates.n_unique(), adjustment=params["adjustment"], feed=params["feed"],
            history_start=history_start.isoformat(),
        )
        atomic_write_parquet(txn.path(CORPORATE_ACTIONS), actions)
        txn.describe(CORPORATE_ACTIONS, rows=actions.height)
        atomic_write_json(txn.path(VALIDATION), validation)
        txn.describe(VALIDATION, ok=validation.get("ok"))
        atomic_write_json(txn.path(FETCH_REPORT), fetch_report)
        atomic_write_text(txn.path(UNIVERSE), "".join(f"{s}\n" for s in universe.symbols))
        txn.describe(UNIVERSE, rows=len(universe), source=universe.source)
        if store.file_path(SECTOR_MAP, base_version) is None:
            sectors = _sector_frame(universe)
            atomic_write_parquet(txn.path(SECTOR_MAP), sectors)
            txn.describe(SECTOR_MAP, rows=sectors.height, source="default")
    version = store.current_version()
    assert version is not None
    return version
