"""`validate_prices`: run every price check and apply the configured severities."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from zoneinfo import ZoneInfo

import polars as pl

from aurora.config import ValidationConfig
from aurora.errors import ConfigError
from aurora.validation import checks, series
from aurora.validation.findings import CHECKS, Finding, ValidationReport

NEW_YORK = ZoneInfo("America/New_York")

# Checks that need only the columns, in report order, then the ones needing the values.
PRICE_CHECKS = (
    "schema", "nulls", "non_finite", "missing_symbols", "unexpected_symbols", "duplicates",
    "non_session_dates", "future_dates", "missing_sessions", "long_gap", "stale_symbol",
    "non_positive_prices", "ohlc_inconsistent", "negative_volume", "large_move",
    "explained_move", "bad_action", "stale_close", "zero_volume", "flat_bar",
)


def new_york_today() -> dt.date:
    """Today's date in New York (the session-date convention of the price store)."""
    return dt.datetime.now(NEW_YORK).date()


def apply_severities(
    findings: Sequence[Finding], severities: dict[str, str]
) -> tuple[list[Finding], dict[str, int]]:
    """Re-grade findings per `severities`; drop "ignore"d ones (returned as counts by check).

    Raises ConfigError for a check name Aurora does not know (a typo would otherwise
    silently keep the default severity).
    """
    unknown = sorted(set(severities) - set(CHECKS))
    if unknown:
        raise ConfigError(
            f"validation.severities: unknown check(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(CHECKS))})"
        )
    kept: list[Finding] = []
    ignored: dict[str, int] = {}
    for f in findings:
        level = severities.get(f.check, f.severity)
        if level == "ignore":
            ignored[f.check] = ignored.get(f.check, 0) + 1
        elif level != f.severity:
            kept.append(replace(f, severity=level))  # type: ignore[arg-type]
        else:
            kept.append(f)
    return kept, ignored


def effective_severities(names: Sequence[str], severities: dict[str, str]) -> dict[str, str]:
    """Severity of each named check after configuration (may be "ignore")."""
    return {name: severities.get(name, CHECKS[name]) for name in names}


def validate_prices(
    prices: pl.DataFrame,
    *,
    universe: Sequence[str],
    corporate_actions: pl.DataFrame | None = None,
    config: ValidationConfig = ValidationConfig(),
    today: dt.date | None = None,
    ended: Mapping[str, dt.date] | None = None,
) -> ValidationReport:
    """Validate a price frame (schema in docs/validation.md) against a universe.

    `today` (default: today in New York) bounds the dates; `corporate_actions` (the shared
    corporate-actions schema) explains large moves on ex-dates. Symbols whose history
    ended (`series.ended_by_actions`: renamed away, from the actions; plus `ended`, symbol
    -> last date it could trade, e.g. delisted or released as ended) are not expected to
    have bars after that date (no `stale_symbol`). The frame is not modified
    and no row is dropped: every defect becomes a `Finding`. When required columns are
    missing or have dtypes that cannot be cast (e.g. a string date), only the schema
    findings are returned and `stats["skipped"]` lists the checks that could not run.
    Raises ConfigError for unknown check names in `config.severities`.
    """
    started = time.perf_counter()
    today = today or new_york_today()
    severities = dict(config.severities)
    findings = checks.check_schema(prices)
    frame, unusable = checks.coerce(prices)
    stats: dict = {"rows": prices.height}
    if frame is None:
        stats["skipped"] = [c for c in PRICE_CHECKS if c != "schema"]
        stats["unusable_columns"] = unusable
        ran = ["schema"]
    else:
        frame = checks.sort_bars(frame)
        ends = {**series.ended_by_actions(corporate_actions), **(ended or {})}
        findings += _run_checks(frame, universe, corporate_actions, config, today, ends)
        ran = list(PRICE_CHECKS)
        dates = frame["date"].drop_nulls()
        stats.update(
            symbols=frame["symbol"].n_unique(),
            universe=len(universe),
            first_date=dates.min().isoformat() if len(dates) else None,
            last_date=dates.max().isoformat() if len(dates) else None,
        )
    kept, ignored = apply_severities(findings, severities)
    stats["checks"] = effective_severities(ran, severities)
    if ignored:
        stats["ignored"] = ignored
    stats["today"] = today.isoformat()
    stats["seconds"] = round(time.perf_counter() - started, 3)
    return ValidationReport(kept, stats)


def _run_checks(
    frame: pl.DataFrame,
    universe: Sequence[str],
    corporate_actions: pl.DataFrame | None,
    config: ValidationConfig,
    today: dt.date,
    ended: Mapping[str, dt.date],
) -> list[Finding]:
    steps: list[Callable[[], list[Finding]]] = [
        lambda: checks.check_nulls(frame),
        lambda: checks.check_non_finite(frame),
        lambda: checks.check_coverage(frame, universe),
        lambda: checks.check_duplicates(frame),
        lambda: series.check_calendar(frame, today),
        lambda: series.check_session_gaps(frame, config.long_gap_sessions),
        lambda: series.check_trailing_gaps(frame, config.long_gap_sessions, ended),
        lambda: checks.check_non_positive_prices(frame),
        lambda: checks.check_ohlc(frame),
        lambda: checks.check_negative_volume(frame),
        lambda: series.check_large_moves(frame, corporate_actions, config.max_move),
        lambda: series.check_actions(frame, corporate_actions),
        lambda: series.check_stale_closes(frame, config.stale_run_sessions),
        lambda: series.check_zero_volume(frame),
        lambda: series.check_flat_bars(frame),
    ]
    out: list[Finding] = []
    for step in steps:
        out += step()
    return out
