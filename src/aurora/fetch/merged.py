"""The fetched bars merged into the stored prices and validated, before a fetch publishes
them (`aurora.fetch.stage` has the contract): stored symbols outside the universe kept
unrefreshed or dropped, per-symbol defects quarantined within
`fetch.max_quarantine_share`, the report's counts and warnings filled in."""

from __future__ import annotations

import datetime as dt

import polars as pl

from aurora.atomic import atomic_write_json
from aurora.calendar import sessions
from aurora.config import ValidationConfig
from aurora.errors import DataValidationError
from aurora.fetch.assets import AssetStatuses
from aurora.fetch.incremental import merge_prices
from aurora.fetch.quarantine import FetchQuarantine
from aurora.fetch.summary import FetchReport
from aurora.store import Store
from aurora.validation import CHECKS, ValidationReport


def merge_fetched(stored: pl.DataFrame | None, fetched: list[pl.DataFrame], symbols: list[str],
           replace: set[str], config: ValidationConfig, report: FetchReport) -> pl.DataFrame:
    """The stored prices updated by `fetched`, `replace` symbols replaced in full; stored
    symbols outside `symbols` kept unrefreshed where `_keep_outside` allows (the rest
    dropped with a warning). Sets `report.kept_unrefreshed`."""
    outside = ([] if stored is None or stored.height == 0 else
               sorted(set(stored.get_column("symbol").unique()) - set(symbols)))
    keepable = outside
    if config.severities.get("unexpected_symbols", CHECKS["unexpected_symbols"]) == "error":
        keepable = []
    prices = merge_prices(stored, fetched, keep_symbols=[*symbols, *keepable],
                          replace_symbols=replace)
    prices, report.kept_unrefreshed = _keep_outside(prices, keepable, config)
    dropped = [s for s in outside if s not in report.kept_unrefreshed]
    _coverage_warnings(prices, symbols, dropped, report)
    return prices


def _keep_outside(prices: pl.DataFrame, others: list[str], config: ValidationConfig
                  ) -> tuple[pl.DataFrame, list[str]]:
    """(prices, kept): `others` whose bars stop `long_gap_sessions` or more sessions before
    the last session would be `stale_symbol` errors, so they are dropped (unless that check
    is not an error)."""
    if not others or prices.height == 0:
        return prices, []
    if config.severities.get("stale_symbol", CHECKS["stale_symbol"]) != "error":
        return prices, others
    panel_last = prices.get_column("date").max()
    assert isinstance(panel_last, dt.date)
    lasts = dict(prices.filter(pl.col("symbol").is_in(others))
                 .group_by("symbol").agg(pl.col("date").max()).iter_rows())
    stale = [s for s in others if s not in lasts or len(sessions(
        lasts[s] + dt.timedelta(days=1), panel_last)) >= config.long_gap_sessions]
    if stale:
        prices = prices.filter(~pl.col("symbol").is_in(stale))
    return prices, [s for s in others if s not in stale]


def validate_merged(store: Store, prices: pl.DataFrame, actions: pl.DataFrame, symbols: list[str],
              config: ValidationConfig, report: FetchReport, quarantine: FetchQuarantine,
              stored: pl.DataFrame | None, statuses: AssetStatuses) -> pl.DataFrame:
    """Validate the merged prices against this run's universe (as `aurora validate` checks
    the version), quarantining per-symbol defects within `fetch.max_quarantine_share`
    (`FetchQuarantine.validate_isolating`; the symbols inactive at the server end at their
    last bar); return the prices to publish. Beyond that share, or on any other error,
    DataValidationError (saying so when the statuses were unavailable and a symbol is
    `stale_symbol`). Fills the report's counts and warnings (kept symbols outside the
    universe are one summary line, not a warning each)."""
    prices, validation = quarantine.validate_isolating(prices, stored=stored, actions=actions,
                                                       config=config,
                                                       inactive=statuses.inactive)
    over = quarantine.over_limit()
    if over:
        validation = ValidationReport(validation.findings + quarantine.batch_findings(),
                                      validation.stats)
    report.validation = validation.to_dict()
    kept_outside = set(report.kept_unrefreshed)
    report.warnings.extend(w.line() for w in validation.warnings
                           if not (w.check == "unexpected_symbols" and w.symbol in kept_outside))
    report.warnings.extend(f"quarantine of {s} ended: its whole history was read again and "
                           "validates" for s in quarantine.fixed())
    _fill_counts(report, prices, actions)
    if over or not validation.ok:
        path = store.state_dir / "fetch-validation-report.json"
        atomic_write_json(path, report.validation)
        first = validation.errors[0]
        missing = [f.symbol for f in validation.findings
                   if f.check == "missing_symbols" and f.symbol]
        held = quarantine.symbols()
        beyond = (f"; {len(held)} of {len(symbols)} symbols ({quarantine.share():.1%}) would be "
                  f"quarantined, more than fetch.max_quarantine_share = "
                  f"{quarantine.max_share:.1%}: {', '.join(held[:10])}"
                  + (f" (+{len(held) - 10} more)" if len(held) > 10 else "") if over else "")
        unknown_ends = (f"; {statuses.warning()}" if statuses.error and any(
            f.check == "stale_symbol" for f in validation.errors) else "")
        raise DataValidationError(
            f"fetched prices failed validation with {len(validation.errors)} error(s), first: "
            f"{first.line()}{beyond}{unknown_ends}; nothing was published (report: {path})",
            missing_symbols=list(dict.fromkeys([*missing, *(held if over else [])])),
            report=report.validation)
    return prices


def _fill_counts(report: FetchReport, prices: pl.DataFrame, actions: pl.DataFrame) -> None:
    report.bars = prices.height
    report.symbols = prices.get_column("symbol").n_unique() if prices.height else 0
    report.sessions = prices.get_column("date").n_unique() if prices.height else 0
    if prices.height:
        report.date_min = prices.get_column("date").min()  # type: ignore[assignment]
        report.date_max = prices.get_column("date").max()  # type: ignore[assignment]
    report.corporate_actions = actions.height


def _coverage_warnings(prices: pl.DataFrame, symbols: list[str], dropped: list[str],
                       report: FetchReport) -> None:
    have = set(prices.get_column("symbol").unique()) if prices.height else set()
    missing = [s for s in symbols if s not in have]
    if missing:
        report.warnings.append(f"no bars at all for {len(missing)} symbol(s): "
                               f"{', '.join(missing[:10])}")
    if dropped:
        report.warnings.append(
            f"{len(dropped)} stored symbol(s) outside this universe are not kept (their "
            f"bars are stale or unexpected symbols are errors): {', '.join(dropped[:10])}")
