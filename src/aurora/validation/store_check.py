"""`validate_store`: checksums of the latest version, then the content of its known files.

Order of work: every file of the latest version against its manifest (`Store.verify`),
files present but not in the manifest, then prices.parquet through `validate_prices`
(universe: the prices manifest entry or the version's params, else the configured universe
file, else Aurora's default universe; corporate actions from corporate_actions.parquet when
present), then schema/readability checks of the other known files.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from aurora.config import AuroraConfig
from aurora.errors import AuroraError
from aurora.store.versions import MANIFEST, Store
from aurora.universe import default_universe, load_configured_universe, load_universe
from aurora.validation.checks import finding
from aurora.validation.findings import Finding, ValidationReport
from aurora.validation.prices import apply_severities, effective_severities, validate_prices

PRICES = "prices.parquet"
FEATURES = "features.parquet"
PREDICTIONS = "predictions.json"
CORPORATE_ACTIONS = "corporate_actions.parquet"
STORE_CHECKS = ("checksum", "missing_file", "unlisted_file", "unreadable", "file_schema",
                "duplicate_keys")

# Known parquet files other than prices: required column -> accepted dtype test.
_KNOWN_TABLES: dict[str, dict[str, Any]] = {
    "sector_map.parquet": {"symbol": pl.String, "sector": pl.String},
    "fundamentals.parquet": {"symbol": pl.String, "as_of": pl.Date},
    CORPORATE_ACTIONS: {"id": pl.String, "action_type": pl.String, "symbol": pl.String,
                        "ex_date": pl.Date},
}


def validate_store(
    store: Store, config: AuroraConfig, today: dt.date | None = None
) -> ValidationReport:
    """Validate the latest version of `store`; see the module docstring for what is checked.

    Raises StoreError when the store is empty or its manifest is unreadable (nothing to
    validate); every other problem, including a corrupt file, becomes a Finding.
    """
    started = time.perf_counter()
    manifest = store.manifest()
    version = manifest.get("version") or store.current_version()
    base = store.archive / str(store.current_version())
    files: dict[str, Any] = manifest.get("files", {})
    findings = _integrity(store, base, files)

    report: ValidationReport | None = None
    source = None
    prices_path = base / PRICES
    if not prices_path.exists():
        if PRICES not in files:
            findings.append(finding(
                "missing_file", f"{PRICES}: not in the latest version {version} "
                "(run `aurora fetch`)"))
    else:
        prices = _read_parquet(prices_path, findings)
        if prices is not None:
            actions = _corporate_actions(base, findings)
            universe, source = _universe(store, config, files.get(PRICES, {}), manifest)
            report = validate_prices(prices, universe=universe, corporate_actions=actions,
                                     config=config.validation, today=today)
    findings += _check_features(base / FEATURES)
    findings += _check_predictions(base / PREDICTIONS, files)
    for name, schema in _KNOWN_TABLES.items():
        if name != CORPORATE_ACTIONS:  # read (and checked) with the prices above
            findings += _check_table(base / name, schema)

    severities = dict(config.validation.severities)
    kept, ignored = apply_severities(findings, severities)
    stats: dict[str, Any] = dict(report.stats) if report is not None else {}
    stats["checks"] = {**effective_severities(STORE_CHECKS, severities),
                       **stats.get("checks", {})}
    if ignored:
        stats["ignored"] = {**stats.get("ignored", {}), **ignored}
    stats.update(version=version, data_dir=str(store.root), files=sorted(files),
                 universe_source=source, seconds=round(time.perf_counter() - started, 3))
    price_findings = report.findings if report is not None else []  # graded already
    return ValidationReport(kept + price_findings, stats)


# -- integrity ----------------------------------------------------------------------------
def _integrity(store: Store, base: Path, files: dict[str, Any]) -> list[Finding]:
    out = []
    for problem in store.verify():
        name = problem.split(":", 1)[0]
        if name in files and not (base / name).exists():
            out.append(finding("missing_file", problem))
        elif name in files:
            out.append(finding("checksum", problem))
        else:
            out.append(finding("unreadable", problem))
    if base.is_dir():
        for path in sorted(base.iterdir()):
            if path.name != MANIFEST and not path.name.startswith(".") and path.name not in files:
                out.append(finding("unlisted_file",
                                   f"{path.name}: present in {base.name} but not in its manifest"))
    return out


def _read_parquet(path: Path, findings: list[Finding]) -> pl.DataFrame | None:
    try:
        return pl.read_parquet(path)
    except Exception as exc:  # any decoder error means the same thing: unusable file
        findings.append(finding("unreadable", f"{path.name}: cannot be read as Parquet "
                                f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"))
        return None


def _schema_problems(frame: pl.DataFrame, schema: dict[str, Any]) -> list[str]:
    problems = []
    for column, dtype in schema.items():
        if column not in frame.columns:
            problems.append(f"missing column {column}")
        elif frame.schema[column] != dtype:
            problems.append(f"column {column} has dtype {frame.schema[column]}, expected {dtype}")
    return problems


def _check_table(path: Path, schema: dict[str, Any]) -> list[Finding]:
    if not path.exists():
        return []
    out: list[Finding] = []
    frame = _read_parquet(path, out)
    if frame is not None:
        out += [finding("file_schema", f"{path.name}: {p}") for p in _schema_problems(frame,
                                                                                        schema)]
    return out


def _corporate_actions(base: Path, findings: list[Finding]) -> pl.DataFrame | None:
    """The corporate actions table, or None when absent or unusable (reported)."""
    path = base / CORPORATE_ACTIONS
    if not path.exists():
        return None
    frame = _read_parquet(path, findings)
    if frame is None:
        return None
    problems = _schema_problems(frame, _KNOWN_TABLES[CORPORATE_ACTIONS])
    findings += [finding("file_schema", f"{path.name}: {p}; large moves not cross-checked")
                 for p in problems]
    return None if problems else frame


def _check_features(path: Path) -> list[Finding]:
    """features.parquet: date (Date), symbol (String), f_* columns Float64, unique keys."""
    if not path.exists():
        return []
    out: list[Finding] = []
    frame = _read_parquet(path, out)
    if frame is None:
        return out
    problems = _schema_problems(frame, {"date": pl.Date, "symbol": pl.String})
    feats = [c for c in frame.columns if c.startswith("f_")]
    if not feats:
        problems.append("no feature columns (f_*)")
    problems += [f"column {c} has dtype {frame.schema[c]}, expected Float64"
                 for c in feats if frame.schema[c] != pl.Float64]
    out += [finding("file_schema", f"{path.name}: {p}") for p in problems]
    if "date" in frame.columns and "symbol" in frame.columns:
        dup = frame.select("symbol", "date").filter(pl.struct("symbol", "date").is_duplicated())
        if dup.height:
            first = dup.sort("symbol", "date").row(0)
            out.append(finding(
                "duplicate_keys",
                f"{path.name}: {dup.height} rows share a (symbol, date) key "
                f"(first: {first[0]} {first[1]})", count=dup.height))
    return out


def _check_predictions(path: Path, files: dict[str, Any]) -> list[Finding]:
    """predictions.json must satisfy its JSON Schema, and should have been made from the
    prices and features of the same version (a run stopped between build and predict leaves
    yesterday's ranking beside today's features: `stale_predictions`)."""
    if not path.exists():
        return []
    from aurora.errors import DataValidationError
    from aurora.predict.predictions import validate_document

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        validate_document(doc, path.name)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [finding("unreadable", f"{path.name}: not valid JSON ({exc})")]
    except DataValidationError as exc:
        return [finding("file_schema", str(exc))]
    inputs = doc.get("inputs", {})
    stale = [name for name, key in ((PRICES, "prices_sha256"), (FEATURES, "features_sha256"))
             if name in files and inputs.get(key) not in (None, files[name].get("sha256"))]
    if stale:
        return [finding("stale_predictions",
                        f"{path.name} was made from other {' and '.join(stale)} than this "
                        f"version holds (decision date {doc.get('decision_date')}); run "
                        "`aurora predict`")]
    return []


# -- universe -----------------------------------------------------------------------------
def _symbols_from(value: Any, store: Store) -> list[str] | None:
    if isinstance(value, list) and value and all(isinstance(s, str) for s in value):
        return value
    if isinstance(value, str) and value:
        path = Path(value)
        path = path if path.is_absolute() else store.root / path
        if path.is_file():
            return list(load_universe(path).symbols)
    return None


def _origin_params(store: Store, manifest: dict[str, Any], max_hops: int = 10_000) -> dict:
    """Params of the version that wrote the current prices.parquet.

    Later stages (build, import) inherit the file unchanged; walk the parent chain while
    the file's checksum stays the same and return the oldest such version's params.
    """
    sha = manifest.get("files", {}).get(PRICES, {}).get("sha256")
    origin = manifest
    for _ in range(max_hops):
        parent = origin.get("parent")
        if not parent or sha is None:
            break
        try:
            earlier = store.manifest(parent)
        except AuroraError:
            break
        if earlier.get("files", {}).get(PRICES, {}).get("sha256") != sha:
            break
        origin = earlier
    return origin.get("params") or {}


def _universe(
    store: Store, config: AuroraConfig, prices_meta: dict[str, Any], manifest: dict[str, Any]
) -> tuple[Sequence[str], str]:
    """The symbols prices.parquet should cover and where that list came from.

    Looks at `universe` (or `symbols`, a list or a universe-file path) in the prices
    manifest entry, then in the params of the version that wrote prices.parquet, then the
    configured universe file, then the default universe.
    """
    candidates = [("manifest entry of prices.parquet", prices_meta),
                  ("manifest params", _origin_params(store, manifest))]
    for where, meta in candidates:
        for key in ("universe", "symbols"):
            try:
                symbols = _symbols_from(meta.get(key), store)
            except AuroraError:
                symbols = None
            if symbols:
                return symbols, f"{where} ({key})"
    if config.universe is not None:
        universe = load_configured_universe(config.universe, config.data_dir)
        return list(universe.symbols), str(config.universe)
    return list(default_universe().symbols), "default universe"
