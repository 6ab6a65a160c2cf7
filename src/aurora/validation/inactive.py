"""Universe symbols the trading API lists as inactive (delisted): their history ends.

A fetch asks Alpaca's `/v2/assets` (`aurora.fetch.assets`) which universe symbols are
inactive and records them, with the date of their last bar (null: none), in the prices'
manifest entry under `INACTIVE_META`. Later versions inherit that entry with the file, so
`aurora validate` (`store_check`) treats them as the fetch that published them did:

- `ended_at_last_bar(prices, symbols)`: the `ended` mapping of `validate_prices` for them:
  each symbol with bars ends at its last bar, so no `stale_symbol`;
- `apply_inactive(report, symbols)`: a `missing_symbols` error of one of them (no bar at
  all) is a warning, its message ending `(inactive at the server: delisted)`;
- `last_bars(prices, symbols)`: symbol -> the date of its last bar (None without any);
- `recorded_inactive(entry)`: the symbols a prices manifest entry records as inactive.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from dataclasses import replace

import polars as pl

from aurora.store import FileEntry
from aurora.validation.findings import ValidationReport

INACTIVE_META = "inactive"  # the prices' manifest key: symbol -> last bar date or None


def last_bars(prices: pl.DataFrame, symbols: Iterable[str]) -> dict[str, dt.date | None]:
    """Each of `symbols` -> the date of its last bar in `prices`, None when it has none."""
    wanted = list(dict.fromkeys(symbols))
    found: dict[str, dt.date] = {}
    if (wanted and prices.height and {"symbol", "date"} <= set(prices.columns)
            and prices.schema["date"] == pl.Date):  # else the schema check reports it
        found = dict(prices.filter(pl.col("symbol").is_in(wanted) & pl.col("date").is_not_null())
                     .group_by("symbol").agg(pl.col("date").max()).iter_rows())
    return {s: found.get(s) for s in wanted}


def ended_at_last_bar(prices: pl.DataFrame, symbols: Iterable[str]) -> dict[str, dt.date]:
    """`symbols` with bars -> their last bar's date (the `ended` of `validate_prices`)."""
    return {s: day for s, day in last_bars(prices, symbols).items() if day is not None}


def apply_inactive(report: ValidationReport, symbols: Collection[str]) -> ValidationReport:
    """The report with each `missing_symbols` error of `symbols` turned into a warning."""
    if not symbols:
        return report
    findings = [
        replace(f, severity="warning",
                message=f"{f.message} (inactive at the server: delisted)")
        if f.check == "missing_symbols" and f.severity == "error" and f.symbol in symbols
        else f
        for f in report.findings
    ]
    return ValidationReport(findings, report.stats)


def recorded_inactive(entry: FileEntry | None) -> list[str]:
    """The symbols `entry` (a prices manifest entry) records as inactive at the server."""
    value = entry.meta(INACTIVE_META) if entry is not None else None
    return sorted(str(s) for s in value) if isinstance(value, dict) else []
