"""The fetch stage's side of the store: read what is stored, publish a new version.

Contract:
- `load_stored` returns the stored prices only when they were fetched with the same
  adjustment and feed (otherwise the run starts from scratch and says so in a warning).
- `publish_fetch` writes prices.parquet, corporate_actions.parquet, validation.json,
  fetch_report.json and universe.txt in ONE store transaction (so `latest` moves only when
  all are written), plus a default sector_map.parquet (meta source=default) when the store
  has none. After publication it writes the input files data/universe/top300.txt and, when
  absent, data/universe/sector_map.csv.
- Nothing here prints.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from aurora.atomic import atomic_write_json, atomic_write_parquet, atomic_write_text
from aurora.config import AuroraConfig
from aurora.errors import StoreError
from aurora.store import Store
from aurora.universe import (
    Universe,
    default_sectors,
    load_configured_universe,
    load_universe,
    write_universe_file,
)

PRICES = "prices.parquet"
ACTIONS = "corporate_actions.parquet"
SECTOR_MAP = "sector_map.parquet"
UNIVERSE_FILE = "top300.txt"


@dataclass
class Stored:
    """What the current version holds for the fetch stage."""

    prices: pl.DataFrame | None = None
    actions: pl.DataFrame | None = None
    history_start: dt.date | None = None
    warnings: list[str] = field(default_factory=list)
    version: str | None = None  # the version this was read from (publication checks it)


def resolve_universe(config: AuroraConfig, store: Store) -> Universe:
    """The configured universe file, else data/universe/top300.txt, else the default 130."""
    from aurora.universe import default_universe

    if config.universe is not None:
        return load_configured_universe(config.universe, config.data_dir)
    saved = store.universe_dir / UNIVERSE_FILE
    if saved.exists():
        return load_universe(saved)
    return default_universe()


def load_stored(store: Store, *, adjustment: str, feed: str) -> Stored:
    """Stored prices/actions usable as the base of an incremental fetch (see module doc)."""
    out = Stored(version=store.current_version())
    path = store.latest_file(PRICES)
    if path is None:
        return out
    manifest = store.manifest()
    meta = manifest.get("files", {}).get(PRICES, {})
    stored_adj = meta.get("adjustment")
    stored_feed = meta.get("feed", manifest.get("params", {}).get("feed"))
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
    start = meta.get("history_start") or meta.get("date_min")
    out.history_start = dt.date.fromisoformat(start) if start else None
    actions = store.latest_file(ACTIONS)
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
    version the incremental merge started from): another run published meanwhile, and
    publishing now would silently revert its changes.
    """
    dates = prices.get_column("date")
    with store.transaction("fetch", params=params) as txn:
        if txn.parent != base_version:
            raise StoreError(f"{store.root}: another run published version {txn.parent} while "
                             f"this fetch worked from {base_version}; nothing was published, "
                             "run again")
        atomic_write_parquet(txn.path(PRICES), prices)
        txn.describe(
            PRICES, rows=prices.height, symbols=prices.get_column("symbol").n_unique(),
            date_min=str(dates.min()), date_max=str(dates.max()),
            sessions=dates.n_unique(), adjustment=params["adjustment"], feed=params["feed"],
            history_start=history_start.isoformat(),
        )
        atomic_write_parquet(txn.path(ACTIONS), actions)
        txn.describe(ACTIONS, rows=actions.height)
        atomic_write_json(txn.path("validation.json"), validation)
        txn.describe("validation.json", ok=validation.get("ok"))
        atomic_write_json(txn.path("fetch_report.json"), fetch_report)
        atomic_write_text(txn.path("universe.txt"),
                          "".join(f"{s}\n" for s in universe.symbols))
        txn.describe("universe.txt", rows=len(universe), source=universe.source)
        if store.latest_file(SECTOR_MAP) is None:
            sectors = _sector_frame(universe)
            atomic_write_parquet(txn.path(SECTOR_MAP), sectors)
            txn.describe(SECTOR_MAP, rows=sectors.height, source="default")
    version = store.current_version()
    assert version is not None
    # The standing universe is written once; a one-off `--universe` run must not shrink what
    # later default runs fetch (each version keeps its own universe.txt).
    standing = store.universe_dir / UNIVERSE_FILE
    if not standing.exists():
        write_universe_file(standing, universe)
    csv_path = store.universe_dir / "sector_map.csv"
    if not csv_path.exists():
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["symbol", "sector"])
        writer.writerows(_sector_frame(universe).iter_rows())
        atomic_write_text(csv_path, buffer.getvalue())
    return version
