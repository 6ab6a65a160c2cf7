"""`build_features`: the build stage over the store, from stored inputs to a published panel.

Reads the prices of the latest version (`aurora.store.bars`; raw bars adjusted point in time
with corporate_actions.parquet), sector_map.parquet (else Aurora's default sectors) and
fundamentals.parquet (optional); computes the 45 features (for a dated universe, only its
members' rows and cross-sections, `aurora.membership`); runs every quality gate,
including the perturbation lookahead check; and, only if all pass, publishes the features
dataset (one Parquet part per year, `aurora.store.datasets`; an incremental build rewrites
only the years it adds to) and features.meta.json in ONE store transaction. The gate report
is always written to data/state/build-report.json; on a failure the store's `latest` is
untouched and DataValidationError names the gate, feature and dates.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from aurora.adjusted import RAW, load_adjusted_prices, raw_prices
from aurora.atomic import atomic_write_json
from aurora.calendar import sessions_back
from aurora.cluster import Runner
from aurora.config import AuroraConfig
from aurora.errors import DataValidationError, StoreError
from aurora.features.compute import FeatureFrame, compute_features, compute_panel
from aurora.features.exchange import Exchange
from aurora.features.featureset import FeatureSet
from aurora.features.gates import GateReport, GateResult, check_lookahead, run_gates
from aurora.features.gatestats import FrameSummary, combine, summarize
from aurora.features.incremental import (
    Incremental,
    plan_incremental,
    prices_digest,
    write_summary,
)
from aurora.features.intradayfamily import IntradaySource, judged_from, load_intraday
from aurora.features.outofcore import (
    SCRATCH,
    OutOfCore,
    compute_out_of_core,
    exchange_intraday,
    read_adjusted,
    scan_history,
)
from aurora.features.panel import PanelInfo, bar_spans, shares_table, spans_record
from aurora.features.registry import (
    REGISTRY_VERSION,
    family_counts,
)
from aurora.features.userfeatures import feature_set_hash
from aurora.intraday.daily import (
    with_intraday,
)
from aurora.membership import Membership
from aurora.progress import Progress, no_progress
from aurora.quarantine import read_quarantine
from aurora.schemas import (
    FUNDAMENTALS_TABLE,
    SECTOR_MAP_TABLE,
    read_table,
)
from aurora.store import Store
from aurora.store.datasets import place_parts, write_dataset
from aurora.store.files import (
    FEATURES,
    FEATURES_DATASET,
    FEATURES_META,
    FEATURES_SUMMARY,
    FUNDAMENTALS,
    SECTOR_MAP,
)
from aurora.universe import Universe, UniverseLike, as_universe, resolve_universe
from aurora.validation.inactive import recorded_inactive

REPORT = "build-report.json"
SHOWN_SYMBOLS = 10
LOOKAHEAD_TAIL = 10  # sessions between the lookahead cutoff and the last date


@dataclass
class BuildInputs:
    """The inputs as read from one store version: `prices` adjusted point in time (empty
    when an out-of-core build left them in `prices_paths`, the raw bars files), and `tail`,
    the adjusted prices the lookahead gate recomputes when `prices` is not the history."""

    version: str
    prices: pl.DataFrame
    sectors: pl.DataFrame | None
    fundamentals: pl.DataFrame | None
    actions: pl.DataFrame | None
    adjustment: str
    sha256: dict[str, str]
    prices_paths: list[Path]
    prices_sha256: str  # the prices' identity (`Manifest.prices_entry`)
    notes: list[str] = field(default_factory=list)
    tail: pl.DataFrame | None = None
    # the intraday fields of each (symbol, date) (`aurora.intraday.daily`), when the
    # feature set has the intraday family: joined to the prices where computed
    intraday: pl.DataFrame | None = None


@dataclass
class BuildResult:
    """What a successful build published."""

    version: str | None
    rows: int
    symbols: int
    date_range: tuple[str, str]
    gates: GateReport
    seconds: float
    meta: dict[str, Any]

    def summary_lines(self) -> list[str]:
        """A few human-readable lines: counts, dates, gates, data notes (no printing here)."""
        meta = self.meta
        families = ", ".join(f"{k} {v}" for k, v in meta["feature_types"].items())
        passed = sum(r.passed for r in self.gates.results)
        lines = [
            f"built {meta['feature_count']} features ({families})",
            f"symbols {self.symbols}, rows {self.rows:,}, "
            f"dates {self.date_range[0]} .. {self.date_range[1]}",
            f"gates: {passed}/{len(self.gates.results)} passed "
            f"({', '.join(sorted({r.name for r in self.gates.results}))})",
        ]
        unknown = meta.get("unknown_sector_symbols") or []
        if unknown:
            more = f", +{len(unknown) - SHOWN_SYMBOLS} more" if len(unknown) > SHOWN_SYMBOLS else ""
            lines.append(f"sector unknown for {len(unknown)} symbol(s) ("
                         f"{', '.join(unknown[:SHOWN_SYMBOLS])}{more}; all in {FEATURES_META})")
        coverage = next((r for r in self.gates.results if r.name == "symbol_coverage"), None)
        not_ranked = coverage.details.get("not_ranked", {}) if coverage else {}
        if not_ranked:
            shown = list(not_ranked.values())[:SHOWN_SYMBOLS]
            more = (f", +{len(not_ranked) - SHOWN_SYMBOLS} more"
                    if len(not_ranked) > SHOWN_SYMBOLS else "")
            lines.append(f"not ranked yet: {len(not_ranked)} symbol(s) ({'; '.join(shown)}"
                         f"{more})")
        outside = meta["universe"].get("rows_outside_membership") or 0
        if outside:
            lines.append(f"dated universe: {outside:,} rows of symbols on dates they were "
                         "not members left out")
        intraday = meta.get("intraday")
        if intraday:
            lines.append(f"intraday features from {intraday['days']} stored day(s) of "
                         f"{intraday['timeframe']} bars, through {intraday['through']}"
                         + ("" if intraday.get("last_day") == intraday["through"] else
                            f" (last stored day {intraday.get('last_day') or 'none'}: "
                            "later rows have no intraday values)"))
        fallback = meta.get("turnover_fallback_rows") or {}
        if fallback:
            lines.append(f"turnover fallback (no shares known) on {sum(fallback.values()):,} "
                         f"rows of {len(fallback)} symbols")
        build = meta.get("build") or {}
        if build.get("mode") == "incremental":
            lines.append(f"incremental: {build['new_sessions']} new session(s) computed, "
                         f"{build['reason']}")
        elif build:
            lines.append(f"full build: {build['reason']}")
        if build.get("out_of_core"):
            months = build.get("block_months") or 12
            pieces = "" if months == 12 else f" in pieces of {months} months"
            lines.append(f"out of core: one task per year{pieces}, computed on "
                         f"{build.get('computed_on', 'in process')}, exchange "
                         f"{build.get('exchange')}")
        lines.append(f"version {self.version} in {self.seconds:.1f}s")
        return lines


def load_inputs(store: Store, *, prices: bool = True) -> BuildInputs:
    """Read the build's inputs from the latest store version: the raw prices adjusted point
    in time (`aurora.adjusted`), the sector map and the fundamentals. `prices=False`: the
    raw prices are only checked (an out-of-core build reads them a year at a time) and
    `prices` is left empty."""
    version = store.current_version()
    if version is None:
        raise StoreError(f"{store.root}: the store is empty (run `aurora fetch` first)")
    if prices:
        adjusted = load_adjusted_prices(store, version)
        bars, actions, sha, path = (adjusted.prices, adjusted.actions, dict(adjusted.sha256),
                                    adjusted.paths)
    else:
        raw = raw_prices(store, version)
        bars, actions, sha, path = pl.DataFrame(), raw.actions, dict(raw.sha256), raw.paths
    files = store.manifest(version).files
    where = f"version {version}"
    optional = {}
    for name, table in ((SECTOR_MAP, SECTOR_MAP_TABLE), (FUNDAMENTALS, FUNDAMENTALS_TABLE)):
        p = store.verified_path(name, version)
        optional[name] = read_table(p, table, where) if p is not None else None
        if p is not None:
            sha[name] = files[name].sha256
    notes = ["raw bars adjusted point in time (splits and dividends up to each date; dollar"
             " volume is raw close x raw volume)"]
    entry = store.manifest(version).prices_entry()
    assert entry is not None
    return BuildInputs(version, bars, optional[SECTOR_MAP], optional[FUNDAMENTALS],
                       actions, RAW, sha, path, entry.sha256, notes)


def excused_symbols(store: Store, version: str) -> dict[str, str]:
    """Universe symbols a build may leave without rows, and why: those the version holds
    quarantined (their bars kept out by a fetch) or recorded inactive at the server."""
    excused = {s: f"quarantined: {e.reason()}"
               for s, e in read_quarantine(store, version).quarantined.items()}
    for symbol in recorded_inactive(store.manifest(version).prices_entry()):
        excused.setdefault(symbol, "inactive at the server")
    return excused


def lookahead_gate(inputs: BuildInputs, symbols: Sequence[str],
                   membership: Membership | None = None,
                   features: FeatureSet = FeatureSet()) -> GateResult:
    """Perturbation check on the tail of the history: cutoff LOOKAHEAD_TAIL sessions before
    the last date, recomputed from the largest look-back + 20 sessions before the cutoff.
    Every feature is checked, the user's included: one that reads the future fails it."""
    prices = with_intraday(inputs.tail if inputs.tail is not None else inputs.prices,
                           inputs.intraday)
    last = prices["date"].max()
    assert isinstance(last, dt.date)
    cutoff = sessions_back(last, LOOKAHEAD_TAIL)
    start = sessions_back(cutoff, features.max_lookback + 20)
    tail = prices.filter(pl.col("date") >= start)

    def compute(prices: pl.DataFrame) -> pl.DataFrame:
        return compute_features(prices, sectors=inputs.sectors, fundamentals=inputs.fundamentals,
                                actions=inputs.actions, universe=symbols,
                                membership=membership, extra=features.added, windowed=True)

    return check_lookahead(tail, compute, cutoff)


def build_meta(frame: FeatureFrame, summary: FrameSummary, inputs: BuildInputs,
               symbols: Sequence[str], universe_source: str, report: GateReport,
               features: FeatureSet = FeatureSet(), digest: bool = True) -> dict[str, Any]:
    """features.meta.json of a build: `summary` of its features, `frame` for what the
    computation learned; `digest`: record `prices_digest` (`inputs.prices` holds the whole
    history)."""
    dates = summary.nulls_by_date["date"]
    lo, hi = dates.min(), dates.max()
    counts = {**family_counts(),
              **({"intraday": len(features.added) - len(features.user)}
                 if features.intraday else {}),
              **({"user": len(features.user)} if features.user else {})}
    return {
        "feature_count": len(features.names),
        "symbol_count": summary.by_symbol.height,
        "row_count": summary.height,
        "date_range": [str(lo), str(hi)],
        "feature_types": counts,
        "registry_version": REGISTRY_VERSION,
        "max_lookback": features.max_lookback,
        "features": features.describe(),
        "user_features": ({"source": str(features.source), "names": list(features.user),
                           "hash": feature_set_hash(features.user)}
                          if features.user else None),
        "feature_set_hash": features.hash,
        "inputs": {name: {"sha256": sha} for name, sha in inputs.sha256.items()},
        "prices_digest": ({"through": str(hi), "sha256": prices_digest(inputs.prices, hi)}
                          if isinstance(hi, dt.date) and digest else None),
        "price_adjustment": inputs.adjustment,
        "universe": {"source": universe_source, "symbols": len(symbols),
                     "ignored_in_prices": frame.ignored_symbols,
                     "rows_outside_membership": frame.outside_membership},
        "sector_source": frame.info.sector_source if inputs.sectors is None else SECTOR_MAP,
        "unknown_sector_symbols": frame.info.unknown_sector,
        "shares_source": frame.info.shares_source,
        "turnover_fallback_rows": frame.turnover_fallback,
        "missing_bars": frame.info.missing_bars,
        "notes": inputs.notes,
        "gates": {r.name + (f":{r.feature}" if r.feature else ""): r.passed
                  for r in report.results},
        "built_at": dt.datetime.now(dt.UTC).isoformat(),
    }


def build_features(
    store: Store,
    config: AuroraConfig,
    *,
    universe: UniverseLike | None = None,
    progress: Progress | None = None,
    lookahead: bool = True,
    incremental: bool = True,
    runner: Runner | None = None,
) -> BuildResult:
    """Build, gate and publish the feature panel (see the module docstring).

    `universe` defaults to `resolve_universe` on the version read. With `incremental`,
    only the sessions added since the last build (and those a symbol trading again had
    missed) are computed when nothing before them changed (`aurora.features.incremental`;
    the result says which mode and why). Raises
    DataValidationError when a gate fails and StoreError when another run published
    meanwhile; nothing is published then. `runner` (`aurora.cluster.connect`) or
    `compute.out_of_core`: a full build runs out of core, one task per year on the runner
    or here (`aurora.features.outofcore`); an incremental one runs here. With
    `compute.out_of_core` the whole history is never read at once, so no incremental build
    is attempted.
    """
    started = time.monotonic()
    report_path = store.state_dir / REPORT
    note = progress or no_progress
    inputs: BuildInputs | None = None
    blocks: OutOfCore | None = None
    try:
        try:
            features = FeatureSet.configured(config)
            out_of_core = config.compute.out_of_core
            intraday = IntradaySource.pinned(config) if features.intraday else None
            inputs = load_inputs(store, prices=not out_of_core)
            chosen = (as_universe(universe) if universe is not None
                      else resolve_universe(config, store, inputs.version))
            symbols, source = list(chosen.symbols), chosen.source
            if not incremental or out_of_core:
                plan, why = None, ("a full build was asked for" if not incremental else
                                   "builds are out of core (compute.out_of_core)")
            else:
                plan, why = plan_incremental(store, inputs.version, inputs.prices,
                                             inputs.sha256, chosen, features.hash,
                                             REGISTRY_VERSION, features.max_lookback)
            if intraday is not None and not out_of_core:
                plan, why = load_intraday(intraday, inputs, symbols, features, plan, why,
                                          progress, LOOKAHEAD_TAIL)
            if plan is None and (runner is not None or out_of_core):
                blocks = _compute_out_of_core(store, inputs, symbols, chosen.membership,
                                              features, runner, progress,
                                              config.compute.block_months,
                                              config.compute.exchange,
                                              intraday)
                frame = FeatureFrame(pl.DataFrame(), blocks.info(), blocks.turnover_fallback(),
                                     blocks.history.ignored,
                                     sum(r.outside_membership for r in blocks.results))
                summary = combine([r.summary for r in blocks.results])
                last_bar = blocks.history.spans.select("symbol", first_date="first",
                                                       last_date="last")
            else:
                frame, spans = _compute_in_memory(inputs, symbols, chosen.membership, features,
                                                  plan, progress)
                summary = plan.summarize(frame.features) if plan else summarize(frame.features)
                last_bar = spans.select("symbol", first_date="first", last_date="last")
        except DataValidationError as exc:
            _write_report(report_path, {"passed": False, "stage": "inputs", "error": str(exc),
                                        "inputs": inputs.sha256 if inputs else {}})
            raise
        return _gate_and_publish(store, config, inputs, frame, summary, last_bar, chosen,
                                 source, features, plan, why, blocks, runner, lookahead,
                                 note, started, intraday)
    finally:
        if blocks is not None:
            blocks.discard()


def _compute_in_memory(inputs: BuildInputs, symbols: list[str],
                       membership: Membership | None, features: FeatureSet,
                       plan: Incremental | None, progress: Progress | None
                       ) -> tuple[FeatureFrame, pl.DataFrame]:
    """The whole panel in this process, or with `plan` its new sessions merged with the
    last build's rows; and the spans of the universe's bars (`panel.bar_spans`): an
    incremental build widens those the last build recorded by its tail."""
    prices = with_intraday(inputs.prices, inputs.intraday)
    tail = plan.tail(prices, symbols) if plan else prices
    spans = plan.spans(tail) if plan else None
    if spans is None:
        spans = bar_spans(prices)
    spans = spans.filter(pl.col("symbol").is_in(symbols))
    frame = compute_panel(tail,
                          sectors=inputs.sectors, fundamentals=inputs.fundamentals,
                          actions=inputs.actions, universe=symbols, membership=membership,
                          extra=features.added, progress=progress,
                          shares=(shares_table(inputs.fundamentals, prices, inputs.actions,
                                               PanelInfo()) if plan else None),
                          windowed=plan is not None,
                          spans=spans if plan else None,
                          since=np.datetime64(plan.since) if plan else None,
                          counted_since=plan.counted_since(symbols) if plan else None)
    return (plan.merge(frame) if plan is not None else frame), spans


def _compute_out_of_core(store: Store, inputs: BuildInputs, symbols: list[str],
                         membership: Membership | None, features: FeatureSet,
                         runner: Runner | None, progress: Progress | None,
                         months: int, exchange_url: str | None,
                         intraday: IntradaySource | None = None) -> OutOfCore:
    """The out-of-core computation (`aurora.features.outofcore`); sets `inputs.tail` to the
    adjusted prices the lookahead gate recomputes. `intraday`: the intraday fields of each
    year are written to the exchange for the tasks, a year at a time. DataValidationError
    when no symbol of the universe has bars."""
    note = progress or no_progress
    exchange = Exchange.open(store.state_dir / SCRATCH, exchange_url)
    try:
        history = scan_history(inputs.prices_paths, exchange, inputs.actions,
                               inputs.fundamentals, symbols,
                               progress=lambda done, total: note("scan", done, total))
        last = history.days.max()
        if not isinstance(last, dt.date):
            raise DataValidationError(f"the prices of version {inputs.version}: no bars of the "
                                      f"{len(symbols)} universe symbol(s)")
        first = history.days.min()
        assert isinstance(first, dt.date)
        if intraday is not None:
            for year in range(first.year, last.year + 1):
                exchange_intraday(intraday.fields(
                    start=dt.date(year, 1, 1), end=dt.date(year, 12, 31), symbols=symbols),
                    exchange)
        blocks = compute_out_of_core(history, store.state_dir / SCRATCH / uuid.uuid4().hex,
                                     sectors=inputs.sectors, fundamentals=inputs.fundamentals,
                                     actions=inputs.actions, universe=symbols,
                                     membership=membership, extra=features.added,
                                     runner=runner, progress=progress, months=months,
                                     intraday=intraday is not None)
        start = sessions_back(sessions_back(last, LOOKAHEAD_TAIL), features.max_lookback + 20)
        inputs.tail = read_adjusted(exchange, start, last, history.cumulative,
                                    intraday is not None)
    except BaseException:
        exchange.remove()
        raise
    return blocks


def _gate_and_publish(store: Store, config: AuroraConfig, inputs: BuildInputs,
                      frame: FeatureFrame, summary: FrameSummary, last_bar: pl.DataFrame,
                      chosen: Universe, source: str, features: FeatureSet,
                      plan: Incremental | None, why: str, blocks: OutOfCore | None,
                      runner: Runner | None, lookahead: bool, note: Progress,
                      started: float, intraday: IntradaySource | None = None) -> BuildResult:
    """The gates, the report, and the publication of what `build_features` computed
    (`intraday`: the pinned intraday store of a build with the family)."""
    report_path = store.state_dir / REPORT
    symbols = list(chosen.symbols)
    note("gates", 0, 1)
    extra = ([lookahead_gate(inputs, symbols, chosen.membership, features)]
             if lookahead else [])
    report = run_gates(summary, universe=symbols, last_bar=last_bar,
                       excused=excused_symbols(store, inputs.version),
                       max_missing_fraction=config.build.max_missing_fraction,
                       min_dispersion=config.build.min_dispersion, extra=extra,
                       membership=chosen.membership, names=features.names,
                       warmup=features.max_lookback,
                       judged_from=judged_from(intraday, features))
    note("gates", 1, 1)
    meta = build_meta(frame, summary, inputs, symbols, source, report, features,
                      digest=inputs.prices.height > 0)
    meta["bar_spans"] = spans_record(last_bar.select("symbol", first="first_date",
                                                     last="last_date"))
    if intraday is not None:
        meta["intraday"] = intraday.digest(dt.date.fromisoformat(meta["date_range"][1]))
    meta["build"] = {"mode": "incremental" if plan else "full", "reason": why,
                     "new_sessions": _new_sessions(summary, plan),
                     "computed_on": (runner.describe() if runner is not None and plan is None
                                     else "in process"),
                     "out_of_core": blocks is not None,
                     "exchange": (config.compute.exchange or "state/scratch") if blocks else None,
                     "block_months": config.compute.block_months if blocks else None}
    _write_report(report_path, {**report.to_json(), "meta": meta})
    if not report.passed:
        raise DataValidationError(f"{report.summary()}; nothing published (report: "
                                  f"{report_path})")
    note("publish", 0, 1)
    with store.transaction("build", base=inputs.version, universe=chosen.record(),
                           params={"registry_version": REGISTRY_VERSION,
                                   "feature_set_hash": meta["feature_set_hash"]}) as txn:
        if blocks is not None:
            place_parts(txn, FEATURES_DATASET, blocks.local_parts(), legacy=FEATURES)
        else:
            write_dataset(txn, FEATURES_DATASET, frame.features, legacy=FEATURES,
                          compression="lz4",
                          **(plan.rewrite(frame.features) if plan else {}))
        meta["summary_sha256"] = write_summary(txn.path(FEATURES_SUMMARY), summary)
        atomic_write_json(txn.path(FEATURES_META), meta)
        txn.describe(FEATURES_META, rows=meta["row_count"], symbols=meta["symbol_count"],
                     date_range=meta["date_range"], registry_version=REGISTRY_VERSION,
                     prices_sha256=inputs.prices_sha256,
                     feature_set_hash=meta["feature_set_hash"])
    note("publish", 1, 1)
    return BuildResult(
        version=store.current_version(), rows=meta["row_count"], symbols=meta["symbol_count"],
        date_range=(meta["date_range"][0], meta["date_range"][1]), gates=report,
        seconds=time.monotonic() - started, meta=meta,
    )


def _new_sessions(summary: FrameSummary, plan: Incremental | None) -> int:
    dates = summary.nulls_by_date["date"]
    return (dates.filter(dates >= plan.first_new) if plan else dates).n_unique()


def _write_report(path: Path, payload: dict[str, Any]) -> None:
    atomic_write_json(path, payload)  # creates state/ owner-only when missing
