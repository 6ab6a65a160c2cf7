"""`manifest.json`: the typed record of one store version.

A manifest names the version, when and by which stage it was published, its parent (the
version `latest` pointed to when the transaction began), the stage's parameters, the
universe the version was made for, and every file with its sha256 and size. Stages attach
their own metadata to a file entry (rows, symbols, date range, adjustment, ...): those keys
are kept as extra fields and read with `FileEntry.meta`.

Manifests written before the universe was recorded carry the fetch universe only as
`params.universe` (a list of symbols); reading such a manifest fills `universe` from it.
A manifest that is missing, not JSON or not of this shape raises StoreError naming the file
and the first field at fault.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from aurora.errors import StoreError
from aurora.store.files import (
    FEATURES,
    FEATURES_DATASET,
    FEATURES_META,
    PRICES,
    PRICES_INDEX,
    UNIVERSE,
    plain_name,
    store_name,
)


class FileEntry(BaseModel):
    """One file of a version: its sha256 (hex) and size in bytes, plus stage metadata."""

    model_config = ConfigDict(extra="allow", frozen=True)

    sha256: str
    bytes: int
    written_by: str | None = None

    def meta(self, key: str, default: Any = None) -> Any:
        """A stage-specific metadata value (`rows`, `date_max`, `adjustment`, ...)."""
        return (self.model_extra or {}).get(key, default)


class MemberInterval(BaseModel):
    """One membership interval of a dated universe: member from `start` to `end`, both
    inclusive; `end` None while still a member."""

    model_config = ConfigDict(frozen=True)

    symbol: str
    start: dt.date
    end: dt.date | None = None


class UniverseRecord(BaseModel):
    """The symbols a version was made for, in order, and where that list came from; for a
    dated universe, also every membership interval (None: always a member)."""

    model_config = ConfigDict(frozen=True)

    symbols: tuple[str, ...]
    source: str
    members: tuple[MemberInterval, ...] | None = None


class Manifest(BaseModel):
    """The manifest of one published version (see the module docstring)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    version: str
    created_at: dt.datetime
    stage: str
    parent: str | None = None
    params: dict[str, Any] = {}
    files: dict[str, FileEntry] = {}
    universe: UniverseRecord | None = None

    @model_validator(mode="before")
    @classmethod
    def _legacy_universe(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("universe") is not None:
            return data
        params, files = data.get("params"), data.get("files")
        if not isinstance(params, dict) or not isinstance(files, dict | None):
            return data  # the field validators name what is wrong
        symbols = params.get("universe")
        if isinstance(symbols, list) and symbols and all(isinstance(s, str) for s in symbols):
            entry = (files or {}).get(UNIVERSE) or {}
            source = entry.get("source") if isinstance(entry, dict) else None
            return {**data, "universe": {"symbols": symbols,
                                         "source": source or f"fetch {data.get('version')}"}}
        return data

    @field_validator("version", "parent")
    @classmethod
    def _plain_version(cls, value: str | None) -> str | None:
        return None if value is None else _plain(value, "version name")

    @field_validator("files")
    @classmethod
    def _plain_files(cls, value: dict[str, FileEntry]) -> dict[str, FileEntry]:
        for name in value:
            _plain(name, "file name", store_name)
        return value

    def file(self, name: str) -> FileEntry | None:
        """The entry of file `name`, or None when this version does not hold it."""
        return self.files.get(name)

    def prices_name(self) -> str | None:
        """The file whose entry describes this version's prices (`aurora.store.bars`): the
        dataset's index, or prices.parquet in a version written before datasets; None
        without prices."""
        return next((name for name in (PRICES_INDEX, PRICES) if name in self.files), None)

    def prices_entry(self) -> FileEntry | None:
        """The entry of `prices_name`: the prices' metadata, and their identity (sha256)."""
        name = self.prices_name()
        return self.files[name] if name is not None else None

    def features_from_other_prices(self) -> str | None:
        """Why the features of this version do not belong with its prices, or None
        when they do (or when either is absent, or the build did not record the prices'
        sha256: versions written before it was recorded). Parts of the features dataset
        without that record (features.meta.json missing) are never taken as current.

        The build records the sha256 of the prices it read (`prices_sha256` in the entry of
        features.meta.json, or of features.parquet in a version written before datasets); a
        version whose prices changed since (a fetch published over the build's
        input meanwhile, or a hand edit) pairs features with other prices.
        """
        prices = self.prices_entry()
        built_from = next((entry.meta("prices_sha256") for entry in
                           (self.file(FEATURES_META), self.file(FEATURES))
                           if entry is not None and entry.meta("prices_sha256")), None)
        if prices is not None and built_from is None and any(
                name.startswith(f"{FEATURES_DATASET}/") for name in self.files):
            return (f"the features of version {self.version} do not record the prices they "
                    f"were built from ({FEATURES_META} is missing); run `aurora build`")
        if prices is None or built_from is None or built_from == prices.sha256:
            return None
        return (f"the features of version {self.version} were built from other prices "
                f"(sha256 {built_from[:12]}...) than its prices ({prices.sha256[:12]}...); "
                "run `aurora build`")

    @classmethod
    def read(cls, path: Path) -> Manifest:
        """Parse `path`; StoreError naming the file (and field) when it is unusable."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise StoreError(f"{path}: manifest missing") from None
        return cls.parse(data, str(path))

    @classmethod
    def parse(cls, data: bytes, where: str) -> Manifest:
        """Parse manifest bytes; StoreError naming `where` (and the field) when unusable."""
        try:
            raw = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StoreError(f"{where}: manifest is not valid JSON ({exc})") from None
        except RecursionError:
            raise StoreError(f"{where}: manifest is not valid JSON (nested too deeply)"
                             ) from None
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(k) for k in err["loc"]) or "top level"
            raise StoreError(f"{where}: manifest field {field}: {err['msg']}") from None

    def to_json(self) -> dict[str, Any]:
        """The JSON document written as manifest.json."""
        out = self.model_dump(mode="json")
        if out.get("universe") is None:
            out.pop("universe", None)
        elif out["universe"].get("members") is None:
            out["universe"].pop("members", None)
        return out


def _plain(name: str, what: str, check: Callable[[object, str], str] = plain_name) -> str:
    """A pydantic-friendly `plain_name` (or `check`): a ValueError becomes the field's
    error."""
    try:
        return check(name, what)
    except StoreError as exc:
        raise ValueError(str(exc)) from None
