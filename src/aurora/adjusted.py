"""Prices as the build and predict read them: the store's raw bars, adjusted point in time.

The store keeps what happened: raw bars (`prices.parquet`, `adjustment: raw`) and the
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
from aurora.schemas import CORPORATE_ACTIONS_TABLE, PRICES_TABLE, read_table
from aurora.store import Store
from aurora.store.files import CORPORATE_ACTIONS, PRICES

RAW = "raw"


@dataclass(frozen=True)
class AdjustedPrices:
    """`prices`: point-in-time adjusted bars plus `dollar_volume` (raw close x raw volume);
    `actions`: the corporate actions applied (None when the version holds none); `sha256`:
    of the files read, by name; `path`: the raw bars file read."""

    version: str
    prices: pl.DataFrame
    actions: pl.DataFrame | None
    sha256: dict[str, str]
    path: Path


def stored_adjustment(store: Store, version: str) -> str:
    """How the prices of `version` are adjusted: the prices' manifest entry, else the params
    of the version that wrote them, else raw (a store made without a fetch)."""
    entry = store.manifest(version).file(PRICES)
    if entry is not None and entry.meta("adjustment"):
        return str(entry.meta("adjustment"))
    origin = store.origin(PRICES, version)
    found = origin.params.get("adjustment") if origin is not None else None
    return str(found) if found else RAW


@dataclass(frozen=True)
class RawPrices:
    """The raw bars file of `version` (checked against its manifest), its corporate actions
    (None when the version holds none) and the sha256 of both, by name."""

    version: str
    path: Path
    actions: pl.DataFrame | None
    sha256: dict[str, str]


def raw_prices(store: Store, version: str) -> RawPrices:
    """Locate and check the raw bars of `version` (`load_adjusted_prices` reads them; an
    out-of-core build reads them a year at a time). StoreError when prices.parquet is
    missing or does not match its manifest; DataValidationError when it holds
    vendor-adjusted bars."""
    path = store.verified_path(PRICES, version, hint="run `aurora fetch` first")
    assert path is not None
    adjustment = stored_adjustment(store, version)
    if adjustment != RAW:
        raise DataValidationError(
            f"{PRICES} of version {version} holds vendor-adjusted bars (adjustment="
            f"{adjustment}) written by an older Aurora; Aurora now stores raw bars and adjusts "
            "them point in time: run `aurora fetch` (it fetches the raw history again)")
    files = store.manifest(version).files
    sha = {PRICES: files[PRICES].sha256}
    actions = None
    actions_path = store.verified_path(CORPORATE_ACTIONS, version)
    if actions_path is not None:
        actions = read_table(actions_path, CORPORATE_ACTIONS_TABLE, f"version {version}")
        sha[CORPORATE_ACTIONS] = files[CORPORATE_ACTIONS].sha256
    return RawPrices(version, path, actions, sha)


def load_adjusted_prices(store: Store, version: str) -> AdjustedPrices:
    """Raw bars and corporate actions of `version`, adjusted point in time (module doc);
    errors as `raw_prices`, and DataValidationError when the bars lack the schema."""
    raw = raw_prices(store, version)
    bars = read_table(raw.path, PRICES_TABLE, f"version {version}")
    return AdjustedPrices(version, point_in_time(bars, raw.actions), raw.actions, raw.sha256,
                          raw.path)
