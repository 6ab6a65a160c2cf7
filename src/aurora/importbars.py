"""`aurora import bars PATH`: bars from another vendor's files, published like a fetch.

The files are read by `aurora.vendorfiles` (`read_bars`, `read_actions`: the formats, aliases
and one-line refusals are documented there).

Publishing (`import_bars`):
- The bars are validated with `aurora.validation.validate_prices`, the checks and severities
  of a fetch (`config.validation`), against the configured universe file when there is one,
  else the imported symbols (a dated universe's symbols whose membership ended end their
  history at their last bar: no `stale_symbol`); an error publishes nothing
  (DataValidationError, report copied to `data/state/import-validation-report.json`).
- A store is bound to the source of its prices (`aurora.fetch.source`). The import's source
  is `import:<absolute PATH>`. Importing over prices of another source (a fetch, the demo,
  another import PATH) is refused (ConfigError, exit 2) unless `new_history`; importing the
  same PATH again replaces the prices with the files' bars (an import is not merged).
- One store transaction over the version read writes the prices (`aurora.store.bars`;
  meta: rows, symbols, date_min, date_max, sessions, history_start, adjustment `raw`,
  source and source_url `import:<PATH>`, synthetic false), corporate_actions.parquet (the
  actions given, else empty), validation.json and universe.txt; it leaves out features.parquet,
  features.meta.json (built from other prices), fetch_report.json and quarantine.json (a
  fetch's report and quarantine of other prices), and adds a default sector map when the
  store has none. When the bars,
  actions, universe and source equal the version read, nothing is published.
- Nothing here prints.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from aurora.atomic import (
    atomic_write_json,
    atomic_write_parquet,
    atomic_write_text,
    sha256_bytes,
    sha256_file,
)
from aurora.config import AuroraConfig
from aurora.errors import ConfigError, DataValidationError
from aurora.fetch.corporate_actions import conform_actions
from aurora.fetch.publish import add_default_sector_map, same_rows
from aurora.fetch.source import PriceSource, stored_source
from aurora.schemas import (
    CORPORATE_ACTIONS_TABLE,
    read_table,
)
from aurora.store import Store
from aurora.store.bars import read_prices, write_prices
from aurora.store.files import (
    CORPORATE_ACTIONS,
    FEATURE_FILES,
    FETCH_REPORT,
    QUARANTINE,
    UNIVERSE,
    VALIDATION,
)
from aurora.universe import (
    Universe,
    default_sectors,
    load_universe,
)
from aurora.validation import validate_prices
from aurora.validation.inactive import ended_at_last_bar
from aurora.vendorfiles import bar_files, empty_actions, read_actions, read_bars

REPORT_NAME = "import-validation-report.json"


# -- publishing ---------------------------------------------------------------------------
@dataclass
class BarsImport:
    """What `import_bars` did (`summary_lines()` is what the CLI prints)."""

    source: Path
    files: tuple[Path, ...]
    rows: int
    symbols: int
    sessions: int
    date_min: dt.date | None
    date_max: dt.date | None
    actions: int
    actions_source: Path | None
    universe: Universe
    version: str
    unchanged: bool = False
    replaced: str | None = None  # the stored prices this import replaced (new history)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary_lines(self) -> list[str]:
        files = f"{len(self.files)} file(s)" if len(self.files) > 1 else "1 file"
        lines = [f"imported raw bars: {self.rows:,} bars, {self.symbols} symbols, "
                 f"{self.sessions} sessions {self.date_min}..{self.date_max} from "
                 f"{self.source} ({files})"]
        lines.append(f"corporate actions: {self.actions} from {self.actions_source}"
                     if self.actions_source is not None else
                     "corporate actions: none given (--actions): an empty table, so no split "
                     "or dividend adjusts these bars")
        lines.append(f"universe: {len(self.universe)} symbols ({self.universe.source})")
        if self.replaced:
            lines.append(self.replaced)
        lines.extend(f"note: {n}" for n in self.notes)
        lines.extend(f"warning: {w}" for w in self.warnings[:10])
        if len(self.warnings) > 10:
            lines.append(f"... {len(self.warnings) - 10} more warning(s) in validation.json")
        lines.append(f"no change; version {self.version} stays latest" if self.unchanged
                     else f"published version {self.version}")
        return lines


def _left_the_universe(prices: pl.DataFrame, universe: Universe) -> dict[str, dt.date]:
    """A dated universe's symbols whose membership has ended -> their last bar: a file has
    no assets endpoint to say they were delisted, and bars that stop after a name left the
    index are its life ending, not a stale feed."""
    if universe.membership is None:
        return {}
    left = [s for s in universe.symbols
            if universe.membership.last_member_day(s) is not None]
    return ended_at_last_bar(prices, left)


def _digest(files: Sequence[Path]) -> str:
    """One sha256 over the files read: their names and contents, in reading order."""
    lines = "".join(f"{f.name} {sha256_file(f)}\n" for f in files)
    return sha256_bytes(lines.encode())


def import_source(path: Path) -> PriceSource:
    """The source an import of `path` binds the store to: `import:<absolute path>`, raw."""
    return PriceSource(f"import:{Path(path).expanduser().absolute()}", None, "raw", False)


def _check_source(store: Store, base: str | None, source: PriceSource,
                  new_history: bool) -> str | None:
    """None when the store holds no prices or prices of `source`; with `new_history`, the
    line saying which prices are replaced; else ConfigError saying what to do."""
    old = stored_source(store, base)
    if old is None or old.same_origin(source):
        return None
    if not new_history:
        raise ConfigError(
            f"{store.root} holds prices from {old.origin()}; importing bars from "
            f"{source.url} would mix sources: use another --data-dir, or pass --new-history "
            "to replace them with the imported bars only")
    return (f"new history: the stored prices from {old.origin()} are replaced by the "
            f"imported bars only (earlier versions stay in the archive)")


def _unchanged(store: Store, base: str | None, prices: pl.DataFrame, actions: pl.DataFrame,
               universe: Universe, source: PriceSource) -> bool:
    """True when `base` already holds these bars and actions from this source and universe."""
    if base is None:
        return False
    manifest = store.manifest(base)
    entry = manifest.prices_entry()
    if (entry is None or entry.meta("source_url") != source.url
            or entry.meta("adjustment") != "raw" or store.universe(base) != universe.record()):
        return False
    if not same_rows(read_prices(store, base), prices, ["symbol", "date"]):
        return False
    stored_actions = store.verified_path(CORPORATE_ACTIONS, base)
    if stored_actions is None:
        return actions.height == 0
    if manifest.files[CORPORATE_ACTIONS].meta("stale", False):
        return False
    old = read_table(stored_actions, CORPORATE_ACTIONS_TABLE, f"version {base}")
    return same_rows(conform_actions(old), conform_actions(actions), ["id"])


def _publish(store: Store, base: str | None, *, prices: pl.DataFrame, actions: pl.DataFrame,
             universe: Universe, validation: dict[str, Any], source: PriceSource,
             params: dict[str, Any], actions_source: str | None) -> str:
    with store.transaction("import", base=base, params=params,
                           universe=universe.record()) as txn:
        write_prices(txn, prices, meta={"history_start": str(prices["date"].min()),
                                        "source": source.url, **source.meta()})
        atomic_write_parquet(txn.path(CORPORATE_ACTIONS), actions)
        txn.describe(CORPORATE_ACTIONS, rows=actions.height, stale=False,
                     source=actions_source)
        atomic_write_json(txn.path(VALIDATION), validation)
        txn.describe(VALIDATION, ok=validation.get("ok"))
        atomic_write_text(txn.path(UNIVERSE), "".join(f"{s}\n" for s in universe.symbols))
        txn.describe(UNIVERSE, rows=len(universe), source=universe.source)
        # A version never pairs features with other prices, nor a fetch's report or
        # quarantine record with prices that fetch did not produce.
        for name in (*FEATURE_FILES, FETCH_REPORT, QUARANTINE):
            txn.remove(name)
        add_default_sector_map(txn, store, base, universe)
    version = store.current_version()
    assert version is not None
    return version


def import_bars(store: Store, path: Path, *, config: AuroraConfig, actions: Path | None = None,
                new_history: bool = False, today: dt.date | None = None) -> BarsImport:
    """Read, validate and publish raw bars (and corporate actions) from PATH (module doc).

    `config` gives the validation settings and the universe file (`config.universe`, else
    the imported symbols are the universe); `today` bounds the dates (default: today in New
    York). Raises DataValidationError (bad file, failed validation), ConfigError (the store
    holds prices of another source and `new_history` is False) or StoreError (another run
    published meanwhile: nothing is published)."""
    base = store.current_version()
    source_path, _, _ = bar_files(path)
    source = import_source(source_path)
    replaced = _check_source(store, base, source, new_history)
    read = read_bars(source_path)
    prices = read.bars
    table = read_actions(actions) if actions is not None else empty_actions()
    actions_source = (str(Path(actions).expanduser().absolute())
                      if actions is not None else None)
    symbols = prices.get_column("symbol").unique().sort().to_list()
    if config.universe is not None:
        universe = load_universe(config.universe)
    else:
        known = default_sectors()
        universe = Universe(tuple(symbols), {s: known[s] for s in symbols if s in known},
                            f"imported bars {source_path}")
    report = validate_prices(prices, universe=universe.symbols, corporate_actions=table,
                             config=config.validation, today=today,
                             ended=_left_the_universe(prices, universe))
    validation = report.to_dict()
    if not report.ok:
        report_path = store.state_dir / REPORT_NAME
        atomic_write_json(report_path, validation)
        missing = [f.symbol for f in report.findings
                   if f.check == "missing_symbols" and f.symbol]
        raise DataValidationError(
            f"imported bars from {source_path} failed validation with {len(report.errors)} "
            f"error(s), first: {report.errors[0].line()}; nothing was published (report: "
            f"{report_path})", missing_symbols=missing, report=validation)
    dates = prices.get_column("date")
    result = BarsImport(
        source=source_path, files=read.files, rows=prices.height, symbols=len(symbols),
        sessions=dates.n_unique(), date_min=dates.min(), date_max=dates.max(),  # type: ignore[arg-type]
        actions=table.height, actions_source=Path(actions_source) if actions_source else None,
        universe=universe, version=base or "", replaced=replaced,
        warnings=[w.line() for w in report.warnings], notes=list(read.notes))
    if replaced is None and _unchanged(store, base, prices, table, universe, source):
        result.unchanged = True
        return result
    params = {
        "kind": "bars", "source": str(source_path), "adjustment": "raw",
        "files": len(read.files), "files_sha256": _digest(read.files),
        "actions": actions_source, "new_history": bool(new_history),
    }
    result.version = _publish(store, base, prices=prices, actions=table, universe=universe,
                              validation=validation, source=source, params=params,
                              actions_source=actions_source)
    return result
