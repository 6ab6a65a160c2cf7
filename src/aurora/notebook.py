"""A read-only front door to the store for notebooks: `aurora.open("data")`.

    import aurora
    store = aurora.open("data")              # a StoreView pinned to what `latest` is now
    store.prices(["AAPL", "MSFT"], start="2024-01-02")
    store.diff(store.versions()["version"][-2])

Contract:
- A view is pinned to one published version, chosen when it is made: `open()` pins to what
  `latest` points to at that moment, so every read of a notebook session is consistent
  while a daily run publishes. `.refresh()` is a new view at the current `latest`,
  `.at(version)` a new view at any published version. Versions are immutable, so a view
  never sees a half-written state.
- Nothing is written, printed or drawn: every call returns a polars frame, a dict or a
  list. Tables are read lazily (`pl.scan_parquet`) with the filters pushed down.
- Before a file is trusted its sha256 is checked against the version's manifest, once per
  view and file (the result is cached on the view, never globally); a mismatch raises
  StoreError naming the file and the version.
- Every failure is one line: StoreError for a missing or inconsistent store, version or
  file (with the command that makes a missing file), ValueError/TypeError for a bad
  argument (naming the argument, or the file and version for an unknown column).
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from aurora.adjustments import point_in_time
from aurora.errors import StoreError
from aurora.membership import SCHEMA as MEMBERSHIP_SCHEMA
from aurora.store import files
from aurora.store.datasets import dataset_parts, has_dataset, parts_between
from aurora.store.files import plain_name
from aurora.store.manifest import Manifest
from aurora.store.versions import Store
from aurora.versiondiff import VersionDiff, diff_views

SymbolsArg = str | Iterable[str] | None
DateArg = dt.date | str | None

NEWEST_SHOWN = 5  # versions listed in an "unknown version" error

# table name -> (dataset, the single file of versions written before datasets)
_DATASETS: dict[str, tuple[str, str]] = {
    name: (dataset, legacy)
    for dataset, legacy in ((files.PRICES_DATASET, files.PRICES),
                            (files.FEATURES_DATASET, files.FEATURES))
    for name in (dataset, legacy)}

HINTS: dict[str, str] = {
    files.PRICES: "run `aurora fetch`",
    files.CORPORATE_ACTIONS: "run `aurora fetch`",
    files.UNIVERSE: "run `aurora fetch`",
    files.VALIDATION: "run `aurora fetch`",
    files.FETCH_REPORT: "run `aurora fetch`",
    files.SECTOR_MAP: "run `aurora fetch` or `aurora import sector-map FILE`",
    files.FUNDAMENTALS: "run `aurora import fundamentals FILE`",
    files.FEATURES: "run `aurora build`",
    files.FEATURES_META: "run `aurora build`",
    files.PREDICTIONS: "run `aurora predict`",
    files.EVALUATION: "run `aurora evaluate` (or `aurora predict`)",
}

PREDICTION_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String(), "score": pl.Float64(), "rank": pl.Int64(),
    "percentile": pl.Float64(), "reason": pl.String(),
}
EVALUATION_SCHEMA: dict[str, pl.DataType] = {
    "model": pl.String(), "date": pl.String(), "ic": pl.Float64(), "rank_ic": pl.Float64(),
    "n": pl.Int64(),
}
VERSIONS_SCHEMA: dict[str, pl.DataType] = {
    "version": pl.String(), "created_at": pl.Datetime("us", "UTC"), "stage": pl.String(),
    "parent": pl.String(), "files": pl.Int64(), "universe_size": pl.Int64(),
    "is_latest": pl.Boolean(),
}


def open_store(data_dir: str | Path, version: str | None = None) -> StoreView:
    """A read-only view of the store under `data_dir` (exported as `aurora.open`).

    Pinned to `version`, default the version `latest` points to now. StoreError (one line
    naming the path) when `data_dir` is missing, not a directory, not an Aurora store or an
    empty store; StoreError naming the version when `version` is not published there.
    """
    store = _existing_store(Path(data_dir))
    if version is None:
        version = store.current_version()
        if version is None:
            published = store.versions()
            if not published:
                raise StoreError(f"{store.root}: the store is empty (run `aurora fetch` first)")
            raise StoreError(f"{store.root}: `latest` points nowhere; open a version explicitly, "
                             f"e.g. aurora.open({str(store.root)!r}, {published[-1]!r})")
    return StoreView(store, version)


def diff(data: str | Path | StoreView, v1: str, v2: str | None = None) -> VersionDiff:
    """What changed from version `v1` to `v2` (default: latest) of the store at `data` (a
    path or a view; a view's default is its own version). See `aurora.versiondiff`."""
    view = data if isinstance(data, StoreView) else open_store(data)
    return view.diff(v1, v2)


def _existing_store(path: Path) -> Store:
    """The Store at `path`; StoreError when the path cannot be one."""
    store = Store(path)
    root = store.root
    if not root.exists():
        raise StoreError(f"{root}: no such directory (not an Aurora store)")
    if not root.is_dir():
        raise StoreError(f"{root}: not a directory (not an Aurora store)")
    store.current_version()  # StoreError when `latest` is not a version pointer
    if not store.latest.is_symlink() and not store.archive.is_dir():
        nested = root / "data"
        hint = (f"; did you mean {nested}?" if (nested / "latest").is_symlink()
                else "; `aurora fetch --data-dir DIR` creates one")
        raise StoreError(f"{root}: not an Aurora store (no latest -> archive/<version>){hint}")
    return store


class StoreView:
    """One published version of a store, read-only (module docstring). Make one with
    `aurora.open`; `.at`, `.refresh` make others."""

    def __init__(self, store: Store, version: str) -> None:
        self._store = store
        self._manifest = _manifest_of(store, version)
        self._verified: dict[str, Path] = {}

    # -- identity ------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        """The data directory (absolute)."""
        return self._store.root

    @property
    def version(self) -> str:
        """The version this view is pinned to."""
        return self._manifest.version

    @property
    def manifest(self) -> Manifest:
        """The pinned version's manifest: stage, parent, params, files with sha256 and meta."""
        return self._manifest

    def __repr__(self) -> str:
        found = {dataset: dataset_parts(self._manifest, dataset)
                 for dataset in (files.PRICES_DATASET, files.FEATURES_DATASET)}
        names = {name for parts in found.values() for name in parts.values()}
        shown = sorted({n for n in self._manifest.files if n not in names}
                       | {f"{dataset}/ ({len(parts)} parts)"
                          for dataset, parts in found.items() if parts})
        return (f"StoreView({str(self.root)!r}, version={self.version!r}, "
                f"stage={self._manifest.stage!r}, files={shown})")

    def at(self, version: str) -> StoreView:
        """A new view pinned to `version`; StoreError naming it (and the newest published
        versions) when it is not published in this store."""
        return StoreView(self._store, version)

    def refresh(self) -> StoreView:
        """A new view pinned to what `latest` points to now (this view is left as it is)."""
        return open_store(self.root)

    def versions(self) -> pl.DataFrame:
        """One row per published version, oldest first: version, created_at (UTC),
        stage, parent, files (count), universe_size (symbols recorded, null when none) and
        is_latest (what `latest` points to now, not necessarily this view's version)."""
        latest = self._store.current_version()
        sizes: dict[str, int | None] = {}
        rows = []
        for name in self._store.versions():
            m = self._store.manifest(name)
            size = (len(m.universe.symbols) if m.universe is not None
                    else sizes.get(m.parent) if m.parent is not None else None)
            sizes[name] = size
            created = m.created_at if m.created_at.tzinfo else m.created_at.replace(tzinfo=dt.UTC)
            rows.append({"version": name, "created_at": created.astimezone(dt.UTC),
                         "stage": m.stage, "parent": m.parent, "files": len(m.files),
                         "universe_size": size, "is_latest": name == latest})
        return pl.DataFrame(rows, schema=VERSIONS_SCHEMA, orient="row")

    def universe(self) -> list[str]:
        """The symbols the version was made for, in recorded order ([] when it records
        none: versions made before universes were recorded)."""
        record = self._store.universe(self.version)
        return list(record.symbols) if record is not None else []

    def membership(self) -> pl.DataFrame | None:
        """A dated universe's intervals (symbol, start, end; end null while a member, both
        ends inclusive), or None when the version's universe is a plain list."""
        record = self._store.universe(self.version)
        if record is None or record.members is None:
            return None
        return pl.DataFrame([(m.symbol, m.start, m.end) for m in record.members],
                            schema=MEMBERSHIP_SCHEMA, orient="row")

    # -- files ---------------------------------------------------------------------------
    def path(self, name: str) -> Path:
        """The path of file `name` of this version, checked against the manifest's sha256
        (once per view). StoreError when the version does not hold it (with the command
        that makes it), when it is missing on disk or when its checksum differs."""
        cached = self._verified.get(name)
        if cached is not None:
            return cached
        if self._manifest.file(name) is None:
            raise StoreError(self._not_held(name))
        path = self._store.verified_path(name, self.version)
        assert path is not None  # the manifest lists it: verified_path raised otherwise
        self._verified[name] = path
        return path

    def scan(self, name: str, start: dt.date | None = None,
             end: dt.date | None = None) -> pl.LazyFrame:
        """A lazy scan of Parquet file `name` of this version (checked as `path` does). The
        prices and the features (`prices.parquet`, `features.parquet`, or their dataset
        names) are the parts of their dataset in a version that holds them
        (`aurora.store.datasets`), only those of years overlapping [start, end], each
        checked; the bounds do not filter rows."""
        if name in _DATASETS:
            dataset, legacy = _DATASETS[name]
            parts = dataset_parts(self._manifest, dataset)
            if parts:
                names = (parts_between(self._manifest, dataset, start, end)
                         or [next(iter(parts.values()))])
                return pl.scan_parquet([self.path(part) for part in names],
                                       hive_partitioning=False)
            name = legacy
        if not name.endswith(".parquet"):
            raise ValueError(f"{name}: not a Parquet file of the store")
        return pl.scan_parquet(self.path(name))

    def holds(self, name: str) -> bool:
        """Whether this version holds file `name` (prices and features: in either
        layout)."""
        if name in _DATASETS:
            return has_dataset(self._manifest, *_DATASETS[name])
        return self._manifest.file(name) is not None

    def _not_held(self, name: str) -> str:
        message = (f"version {self.version} holds no {name}: "
                   f"{HINTS.get(name, 'no Aurora command writes it')}")
        latest = self._store.current_version()
        if latest not in (None, self.version) and StoreView(self._store, latest).holds(name):
            message += f" (the latest version {latest} has it: use .refresh())"
        return message

    def _json(self, name: str) -> dict[str, Any]:
        path = self.path(name)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StoreError(f"{name} of version {self.version} is not valid JSON ({exc})"
                             ) from None
        if not isinstance(doc, dict):
            raise StoreError(f"{name} of version {self.version} is not a JSON object")
        return doc

    # -- tables --------------------------------------------------------------------------
    def prices(self, symbols: SymbolsArg = None, start: DateArg = None, end: DateArg = None,
               columns: Sequence[str] | None = None, *, adjusted: bool = False
               ) -> pl.DataFrame:
        """Daily bars: symbol, date (New York session), then open, high, low, close, vwap
        (USD per share), volume (shares), trade_count, or just `columns`. One row per
        (symbol, session), sorted by symbol, date. Filters: `symbols` (a symbol or a list,
        case-insensitive), `start`/`end` (dates or ISO strings, inclusive).

        The store keeps raw bars. `adjusted=True` gives them as the build and predict see
        them: adjusted point in time (`aurora.adjustments.point_in_time`: splits and
        dividends up to each date, anchored on the symbol's first stored bar, computed over
        the symbols' whole stored history and then filtered), plus `dollar_volume`."""
        if not adjusted:
            return self._table(files.PRICES, "date", symbols, start, end, columns)
        raw = self._table(files.PRICES, "date", symbols, None, end, None)
        actions = (self.corporate_actions(symbols)
                   if self._manifest.file(files.CORPORATE_ACTIONS) is not None else None)
        out = point_in_time(raw, actions)
        lo = _date(start, "start")
        if lo is not None:
            out = out.filter(pl.col("date") >= lo)
        if columns is not None:
            picked = [columns] if isinstance(columns, str) else list(columns)
            out = out.select("symbol", "date", *picked)
        return out

    def features(self, symbols: SymbolsArg = None, start: DateArg = None, end: DateArg = None,
                 columns: Sequence[str] | None = None) -> pl.DataFrame:
        """The feature panel: symbol, date, then the f_* columns (Float64, or `columns`).
        A row dated t uses only what was known at t's close. Sorted by symbol, date; filters
        as `prices`."""
        return self._table(files.FEATURES, "date", symbols, start, end, columns)

    def corporate_actions(self, symbols: SymbolsArg = None, start: DateArg = None,
                          end: DateArg = None, columns: Sequence[str] | None = None
                          ) -> pl.DataFrame:
        """Splits, dividends and name changes: symbol, ex_date, then id, action_type,
        old_symbol, process_date, old_rate, new_rate, cash_rate (USD per share). Sorted by
        symbol, ex_date; `start`/`end` filter ex_date; other filters as `prices`."""
        return self._table(files.CORPORATE_ACTIONS, "ex_date", symbols, start, end, columns)

    def _table(self, name: str, date_col: str, symbols: SymbolsArg, start: DateArg,
               end: DateArg, columns: Sequence[str] | None) -> pl.DataFrame:
        wanted = _symbols(symbols)
        lo, hi = _date(start, "start"), _date(end, "end")
        frame = self.scan(name, lo, hi) if date_col == "date" else self.scan(name)
        keys = ["symbol", date_col]
        available = frame.collect_schema().names()
        values = self._columns(name, available, keys, columns)
        conditions = []
        if wanted is not None:
            conditions.append(pl.col("symbol").is_in(wanted))
        if lo is not None:
            conditions.append(pl.col(date_col) >= lo)
        if hi is not None:
            conditions.append(pl.col(date_col) <= hi)
        if conditions:
            frame = frame.filter(pl.all_horizontal(conditions))
        return frame.select([*keys, *values]).sort(keys).collect()

    def _columns(self, name: str, available: list[str], keys: list[str],
                 columns: Sequence[str] | None) -> list[str]:
        missing_keys = [k for k in keys if k not in available]
        if missing_keys:
            raise StoreError(f"{name} of version {self.version} has no column "
                             f"{missing_keys[0]!r}")
        values = [c for c in available if c not in keys]
        if columns is None:
            return values
        if isinstance(columns, str):
            columns = [columns]
        for column in columns:
            if column not in available:
                near = difflib.get_close_matches(column, values, n=3)
                hint = f"; did you mean {', '.join(near)}?" if near else ""
                raise ValueError(f"{name} of version {self.version} has no column "
                                 f"{column!r}{hint}")
        return [c for c in dict.fromkeys(columns) if c not in keys]

    # -- documents -----------------------------------------------------------------------
    def prediction_document(self) -> dict[str, Any]:
        """predictions.json as stored (a new dict on every call)."""
        return self._json(files.PREDICTIONS)

    def predictions(self) -> pl.DataFrame:
        """The ranking: one row per symbol of the universe: symbol, score (the model's
        prediction of the per-date z-scored return from decision_date's close to the close
        `horizon` sessions later; unitless, higher = better), rank (1 = best), percentile
        (0..100, 100 = best), reason (why a symbol is unscored; null when scored),
        decision_date (the session traded, at its close), feature_date (the session before
        it, whose close the features describe) and horizon (sessions). Sorted by rank,
        unscored last."""
        doc = self.prediction_document()
        entries = [{k: e.get(k) for k in PREDICTION_SCHEMA} for e in doc.get("predictions", [])]
        frame = pl.DataFrame(entries, schema=PREDICTION_SCHEMA, orient="row")
        return frame.with_columns(
            decision_date=pl.lit(_json_date(doc, "decision_date", self.version), pl.Date()),
            feature_date=pl.lit(_json_date(doc, "feature_date", self.version), pl.Date()),
            horizon=pl.lit(doc.get("horizon"), pl.Int64()),
        ).sort(["rank", "symbol"], nulls_last=True)

    def evaluation_summary(self) -> dict[str, Any]:
        """evaluation.json without its per-date series and cache key: status, horizon,
        models (IC, rank IC, spread, turnover, leakage flag), protocol, ..."""
        return {k: v for k, v in self._json(files.EVALUATION).items()
                if k not in ("daily", "key")}

    def evaluation(self) -> pl.DataFrame:
        """The walk-forward's out-of-sample daily series: model, date (feature date), ic
        (Pearson), rank_ic (Spearman) against the `horizon`-session forward return, n
        (symbols scored that day). Sorted by model, date; no rows when the evaluation
        found too little history (see `evaluation_summary()["message"]`)."""
        daily = self._json(files.EVALUATION).get("daily") or []
        rows = [{k: row.get(k) for k in EVALUATION_SCHEMA} for row in daily]
        frame = pl.DataFrame(rows, schema=EVALUATION_SCHEMA, orient="row")
        return frame.with_columns(pl.col("date").str.to_date()).sort(["model", "date"])

    # -- changes -------------------------------------------------------------------------
    def diff(self, v1: str, v2: str | None = None) -> VersionDiff:
        """What changed from version `v1` to `v2` (default: this view's version): files,
        symbols, dates, price rows, feature columns and rows (`aurora.versiondiff`)."""
        before = self if v1 == self.version else self.at(v1)
        after = self if v2 is None or v2 == self.version else self.at(v2)
        return diff_views(before, after)


def _manifest_of(store: Store, version: str) -> Manifest:
    """The manifest of a published `version`; StoreError naming it and the newest ones."""
    try:
        plain = plain_name(version, "version name")
    except StoreError:
        plain = None
    if plain is None or not (store.archive / plain / files.MANIFEST).is_file():
        newest = store.versions()[-NEWEST_SHOWN:][::-1]
        listed = f"newest: {', '.join(newest)}" if newest else "no version is published"
        raise StoreError(f"{store.root}: version {version!r} does not exist ({listed})")
    return store.manifest(version)


def _symbols(symbols: SymbolsArg) -> list[str] | None:
    """The symbol filter as an upper-case list (None: every symbol)."""
    if symbols is None:
        return None
    items = [symbols] if isinstance(symbols, str) else list(symbols)
    if not all(isinstance(s, str) for s in items):
        raise TypeError("symbols: expected a symbol or a list of symbols (strings)")
    return [s.strip().upper() for s in items]


def _date(value: DateArg, argument: str) -> dt.date | None:
    """A date filter as a date: a date, a datetime (its date) or an ISO string."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{argument}: {value!r} is not a date (use YYYY-MM-DD)") from None
    raise TypeError(f"{argument}: expected a date or a YYYY-MM-DD string, got "
                    f"{type(value).__name__}")


def _json_date(doc: dict[str, Any], key: str, version: str) -> dt.date | None:
    value = doc.get(key)
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise StoreError(f"{files.PREDICTIONS} of version {version}: {key} {value!r} is not "
                         "a date") from None
