"""Prices as the build and predict read them: the store's raw bars, adjusted point in time.

The store keeps what happened: raw bars (`aurora.store.bars`, `adjustment: raw`) and the
corporate-actions history (`corporate_actions.parquet`). `load_adjusted_prices` reads both
from one version (each file checked against its manifest) and applies
`aurora.adjustments.point_in_time`: the value on date d uses only bars and actions up to d,
so a store fetched further or later gives the same values for every date it already held.

Versions written by an older Aurora hold the vendor's adjusted bars (`adjustment: all`),
whose dividend adjustment embeds dividends paid after each bar. They are refused with a
one-line message saying what to run (`aurora fetch`, which re-fetches raw bars); nothing is
recovered by inverting a vendor's adjustment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from aurora.adjustments import point_in_time
from aurora.errors import DataValidationError
from aurora.schemas import CORPORATE_ACTIONS_TABLE, read_table
from aurora.store import Store
from aurora.store.bars import price_paths
from aurora.store.datasets import read_files
from aurora.store.files import CORPORATE_ACTIONS

RAW = "raw"


@dataclass(frozen=True)
class AdjustedPrices:
    """`prices`: point-in-time adjusted bars plus `dollar_volume` (raw close x raw volume);
    `actions`: the corporate actions applied (None when the version holds none); `sha256`:
    of the files read, by name (the prices by `Manifest.prices_name`); `paths`: the raw bars files
    read."""

    version: str
    prices: pl.DataFrame
    actions: pl.DataFrame | None
    sha256: dict[str, str]
    paths: list[Path]


def stored_adjustment(store: Store, version: str) -> str:
    """How the prices of `version` are adjusted: the prices' manifest entry, else the params
    of the version that wrote them, else raw (a store made without a fetch)."""
    name = store.manifest(version).prices_name()
    entry = store.manifest(version).file(name) if name is not None else None
    if entry is not None and entry.meta("adjustment"):
        return str(entry.meta("adjustment"))
    origin = store.origin(name, version) if name is not None else None
    found = origin.params.get("adjustment") if origin is not None else None
    return str(found) if found else RAW


@dataclass(frozen=True)
class RawPrices:
    """The raw bars files of `version` (checked against its manifest), its corporate
    actions (None when the version holds none) and the sha256 of both, by name (the prices
    by `Manifest.prices_name`)."""

    version: str
    paths: list[Path]
    actions: pl.DataFrame | None
    sha256: dict[str, str]


def raw_prices(store: Store, version: str) -> RawPrices:
    """Locate and check the raw bars of `version` (`load_adjusted_prices` reads them; an
    out-of-core build reads them a batch of symbols at a time). StoreError when the prices
    are missing or a file does not match its manifest; DataValidationError when they hold
    vendor-adjusted bars or a file lacks the prices' columns."""
    paths = price_paths(store, version)
    adjustment = stored_adjustment(store, version)
    if adjustment != RAW:
        raise DataValidationError(
            f"the prices of version {version} hold vendor-adjusted bars (adjustment="
            f"{adjustment}) written by an older Aurora; Aurora now stores raw bars and adjusts "
            "them point in time: run `aurora fetch` (it fetches the raw history again)")
    files = store.manifest(version).files
    name = store.manifest(version).prices_name()
    assert name is not None
    sha = {name: files[name].sha256}
    actions = None
    actions_path = store.verified_path(CORPORATE_ACTIONS, version)
    if actions_path is not None:
        actions = read_table(actions_path, CORPORATE_ACTIONS_TABLE, f"version {version}")
        sha[CORPORATE_ACTIONS] = files[CORPORATE_ACTIONS].sha256
    return RawPrices(version, paths, actions, sha)


def load_adjusted_prices(store: Store, version: str) -> AdjustedPrices:
    """Raw bars and corporate actions of `version`, adjusted point in time (module doc);
    errors as `raw_prices`, and DataValidationError when the bars lack the schema."""
    raw = raw_prices(store, version)
    bars = read_files(raw.paths, f"the prices of version {version}")
    return AdjustedPrices(version, point_in_time(bars, raw.actions), raw.actions, raw.sha256,
                          raw.paths)
