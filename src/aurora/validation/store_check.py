"""`validate_store`: checksums of the latest version, then the content of its known files.

Order of work: every file of the latest version against its manifest (`Store.verify`),
files present but not in the manifest, the prices' index against the manifest
(`aurora.store.bars.index_findings`), then the prices (every part of the dataset, or
prices.parquet; each part's rows in its year) through `validate_prices`
(universe: `aurora.universe.resolve_universe` on the version, the rule every stage uses;
corporate actions from corporate_actions.parquet when present; the version's quarantine
record, quarantine.json, through `aurora.validation.quarantined.apply_quarantine`: every
quarantined symbol listed as a `quarantined` finding, released problems accepted, released
stale symbols ended; the symbols the fetch found inactive at the server, recorded in the
prices' entry, ended at their last bar as the fetch did: `aurora.validation.inactive`), then
schema/readability checks of the other known files.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import polars as pl

from aurora.config import AuroraConfig
from aurora.errors import DataValidationError, StoreError, first_line
from aurora.quarantine import QuarantineRecord, read_quarantine
from aurora.schemas import (
    CORPORATE_ACTIONS_TABLE,
    FEATURES_TABLE,
    FUNDAMENTALS_TABLE,
    SECTOR_MAP_TABLE,
    TableSchema,
    find_duplicate_keys,
    non_finite,
)
from aurora.store import FileEntry, Manifest, Store
from aurora.store.bars import index_findings
from aurora.store.datasets import dataset_digest, dataset_parts
from aurora.store.documents import validate_document
from aurora.store.files import (
    CORPORATE_ACTIONS,
    FEATURES,
    FEATURES_DATASET,
    FUNDAMENTALS,
    MANIFEST,
    PREDICTIONS,
    PRICES,
    PRICES_DATASET,
    SECTOR_MAP,
)
from aurora.universe import resolve_universe
from aurora.validation.checks import finding
from aurora.validation.findings import Finding, ValidationReport
from aurora.validation.inactive import apply_inactive, ended_at_last_bar, recorded_inactive
from aurora.validation.prices import apply_severities, effective_severities, validate_prices
from aurora.validation.quarantined import apply_quarantine

STORE_CHECKS = ("checksum", "missing_file", "unlisted_file", "unreadable", "file_schema",
                "duplicate_keys", "stale_features", "stale_predictions")

# Known parquet files other than prices and features: the schema stages read them with.
_KNOWN_TABLES: dict[str, TableSchema] = {
    SECTOR_MAP: SECTOR_MAP_TABLE,
    FUNDAMENTALS: FUNDAMENTALS_TABLE,
    CORPORATE_ACTIONS: CORPORATE_ACTIONS_TABLE,
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
    version = manifest.version
    base = store.archive / version
    files = manifest.files
    findings = _integrity(store, base, files)

    report: ValidationReport | None = None
    source = None
    findings += [finding("checksum", problem) for problem in index_findings(store, version)]
    price_files = list(dataset_parts(manifest, PRICES_DATASET).values()) or [PRICES]
    if manifest.prices_name() is None:
        findings.append(finding(
            "missing_file", f"the prices: not in the latest version {version} "
            "(run `aurora fetch`)"))
    elif all((base / name).exists() for name in price_files):
        prices = _read_prices(base, price_files, findings)
        if prices is not None:
            actions = _corporate_actions(base, findings)
            universe = resolve_universe(config, store, version)
            source = universe.source
            record = _quarantine(store, version, findings)
            inactive = recorded_inactive(manifest.prices_entry())
            report = validate_prices(prices, universe=universe.symbols,
                                     corporate_actions=actions,
                                     config=config.validation, today=today,
                                     ended={**record.ended(),
                                            **ended_at_last_bar(prices, inactive)})
            report = apply_inactive(report, inactive)
            report = apply_quarantine(report, record, config.validation.severities)
    parts = dataset_parts(manifest, FEATURES_DATASET)
    findings += _check_features([base / name for name in parts.values()] or [base / FEATURES],
                                base)
    stale = manifest.features_from_other_prices()
    if stale is not None:
        findings.append(finding("stale_features", stale))
    findings += _check_predictions(base / PREDICTIONS, manifest)
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
def _integrity(store: Store, base: Path, files: dict[str, FileEntry]) -> list[Finding]:
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
        for path in sorted(base.rglob("*")):
            name = path.relative_to(base).as_posix()
            if (path.is_file() and name != MANIFEST and name not in files
                    and not any(part.startswith(".") for part in path.relative_to(base).parts)):
                out.append(finding("unlisted_file",
                                   f"{name}: present in {base.name} but not in its manifest"))
    return out


def _read_parquet(path: Path, findings: list[Finding], name: str | None = None
                  ) -> pl.DataFrame | None:
    try:
        return pl.read_parquet(path)
    except Exception as exc:  # any decoder error means the same thing: unusable file
        findings.append(finding("unreadable", f"{name or path.name}: cannot be read as Parquet "
                                f"({type(exc).__name__}: {first_line(exc, 200)})"))
        return None


def _read_prices(base: Path, names: list[str], findings: list[Finding]) -> pl.DataFrame | None:
    """The bars of the prices' files `names` together, or None when one cannot be read
    (reported); rows of a part dated outside its year are reported too."""
    frames = []
    for name in names:
        frame = _read_parquet(base / name, findings, name)
        if frame is None:
            return None
        findings += _misplaced(frame, name, (base / name).parent.name)
        frames.append(frame)
    try:
        return pl.concat(frames, how="vertical_relaxed") if len(frames) > 1 else frames[0]
    except pl.exceptions.PolarsError as exc:
        findings.append(finding("file_schema", f"the prices' parts do not share one schema "
                                f"({first_line(exc)})"))
        return None


def _schema_problems(frame: pl.DataFrame, schema: TableSchema) -> list[str]:
    return schema.problems(frame.schema)


def _check_table(path: Path, schema: TableSchema) -> list[Finding]:
    if not path.exists():
        return []
    out: list[Finding] = []
    frame = _read_parquet(path, out)
    if frame is not None:
        out += [finding("file_schema", f"{path.name}: {p}") for p in _schema_problems(frame,
                                                                                        schema)]
        out += _check_finite(frame, path)
    return out


def _check_finite(frame: pl.DataFrame, path: Path) -> list[Finding]:
    """NaN or +/-inf in a float column of a reference table (fundamentals), one finding per
    column: an import refuses them, and a build would fail on them."""
    out = []
    for column in [c for c, dtype in frame.schema.items() if dtype.is_float()]:
        bad = frame.filter(non_finite(column))
        if bad.height:
            row = bad.row(0, named=True)
            symbol = row.get("symbol")
            as_of = f" as_of {row['as_of']}" if row.get("as_of") is not None else ""
            out.append(finding(
                "non_finite", f"{path.name}: {column} is NaN or inf on {bad.height} row(s), "
                f"first {symbol}{as_of} ({row[column]}); import the file again with finite "
                "values", symbol=symbol, count=bad.height))
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


def _quarantine(store: Store, version: str, findings: list[Finding]) -> QuarantineRecord:
    """The version's quarantine record (`aurora.quarantine`); a malformed one is a
    `file_schema` finding and counts as empty (a changed one is already a checksum error)."""
    try:
        return read_quarantine(store, version)
    except DataValidationError as exc:
        findings.append(finding("file_schema", str(exc)))
    except StoreError:
        pass
    return QuarantineRecord()


def _check_features(paths: list[Path], base: Path) -> list[Finding]:
    """The features (the parts of the dataset, or features.parquet): date (Date), symbol
    (String), f_* columns Float64 in each; every row of a part dated in its directory's
    year (a date-range read opens that year's part only); (symbol, date) unique across
    them all."""
    out: list[Finding] = []
    keys = []
    for path in paths:
        if not path.exists():
            continue
        name = path.relative_to(base).as_posix()
        frame = _read_parquet(path, out, name)
        if frame is None:
            continue
        out += [finding("file_schema", f"{name}: {p}")
                for p in _schema_problems(frame, FEATURES_TABLE)]
        if "date" in frame.columns and "symbol" in frame.columns:
            keys.append(frame.select("symbol", "date"))
            out += _misplaced(frame, name, path.parent.name)
    duplicates = find_duplicate_keys(pl.concat(keys)) if keys else None
    if duplicates is not None:
        where = paths[0].relative_to(base).as_posix() if len(paths) == 1 else FEATURES_DATASET
        out.append(finding("duplicate_keys", f"{where}: {duplicates.message()}",
                           count=duplicates.surplus))
    return out


def _misplaced(frame: pl.DataFrame, name: str, directory: str) -> list[Finding]:
    """A finding when rows of the part `name` (in `year=YYYY`) are dated in another year."""
    if not directory.startswith("year=") or frame.schema.get("date") != pl.Date:
        return []
    outside = frame.filter(pl.col("date").dt.year() != int(directory.removeprefix("year=")))
    if outside.height == 0:
        return []
    return [finding("misplaced_rows", f"{name}: {outside.height} row(s) dated outside "
                    f"{directory.removeprefix('year=')} (first {outside['date'].min()}); a "
                    "date-range read would miss them", count=outside.height)]


def _check_predictions(path: Path, manifest: Manifest) -> list[Finding]:
    """predictions.json must satisfy its JSON Schema, and should have been made from the
    prices and features of the same version (a run stopped between build and predict leaves
    yesterday's ranking beside today's features: `stale_predictions`)."""
    if not path.exists():
        return []
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        validate_document(doc, path.name)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [finding("unreadable", f"{path.name}: not valid JSON ({exc})")]
    except DataValidationError as exc:
        return [finding("file_schema", str(exc))]
    inputs = doc.get("inputs", {})
    entry = manifest.prices_entry()
    held = {"prices": entry.sha256 if entry is not None else None,
            "features": dataset_digest(manifest, FEATURES_DATASET, legacy=FEATURES)}
    stale = [name for name, key in (("prices", "prices_sha256"), ("features", "features_sha256"))
             if held[name] is not None and inputs.get(key) not in (None, held[name])]
    if stale:
        return [finding("stale_predictions",
                        f"{path.name} was made from other {' and '.join(stale)} than this "
                        f"version holds (decision date {doc.get('decision_date')}); run "
                        "`aurora predict`")]
    return []
