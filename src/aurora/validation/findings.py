"""Validation results: `Finding` (one defect) and `ValidationReport` (all of them).

A finding names the check that raised it (a stable name from `CHECKS`), its severity
("error" blocks publication, "warning" is reported), the symbol it concerns (None for
store-wide problems), every date involved (the machine report keeps all of them) and a
short human message (a few dates plus a count, never thousands of dates).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning"]

# Every check Aurora runs, with its default severity. Names are stable: they appear in
# reports and are the keys of `[validation] severities` in aurora.toml.
CHECKS: dict[str, Severity] = {
    # price frame (aurora.validation.checks)
    "schema": "error",
    "nulls": "error",
    "non_finite": "error",
    "missing_symbols": "error",
    "unexpected_symbols": "warning",
    "missing_sessions": "warning",
    "long_gap": "error",
    "stale_symbol": "error",
    "non_session_dates": "error",
    "future_dates": "error",
    "duplicates": "error",
    "non_positive_prices": "error",
    "ohlc_inconsistent": "error",
    "negative_volume": "error",
    "large_move": "error",
    "explained_move": "warning",
    "bad_action": "error",
    "stale_close": "warning",
    "zero_volume": "warning",
    "flat_bar": "warning",
    # quarantine (aurora.quarantine): a symbol the fetch keeps out until a person releases it
    "quarantined": "warning",
    # whole store (aurora.validation.store_check)
    "checksum": "error",
    "missing_file": "error",
    "unlisted_file": "warning",
    "unreadable": "error",
    "file_schema": "error",
    "duplicate_keys": "error",
    "misplaced_rows": "error",
    "stale_predictions": "warning",
    "stale_features": "error",
}

MESSAGE_DATES = 5


def format_percent(fraction: float) -> str:
    """`+52.3%` for a fraction of 0.523; from +/-10,000 % on, three significant digits
    (`+1e+302%`), so no value makes a message long."""
    if math.isfinite(fraction) and abs(fraction) < 100:
        return f"{fraction:+.1%}"
    return f"{fraction * 100:+.3g}%"


def format_dates(dates: Sequence[dt.date], limit: int = MESSAGE_DATES) -> str:
    """`2016-01-04, 2016-01-05 (+12 more)`: the first `limit` dates and how many are left."""
    shown = ", ".join(d.isoformat() for d in dates[:limit])
    rest = len(dates) - limit
    return f"{shown} (+{rest} more)" if rest > 0 else shown


@dataclass(frozen=True)
class Finding:
    """One defect found by one check.

    `count` is how many occurrences the finding stands for (rows, sessions, files); it
    equals len(dates) for date-based findings. `dates` is sorted and complete.
    """

    check: str
    severity: Severity
    message: str
    symbol: str | None = None
    dates: tuple[dt.date, ...] = ()
    count: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "severity": self.severity,
            "symbol": self.symbol,
            "count": self.count,
            "message": self.message,
            "dates": [d.isoformat() for d in self.dates],
        }

    def line(self) -> str:
        """`[error] large_move AMD: ...` for logs and summaries."""
        who = f" {self.symbol}" if self.symbol else ""
        return f"[{self.severity}] {self.check}{who}: {self.message}"


@dataclass
class ValidationReport:
    """All findings of a validation run plus statistics about what was validated.

    `stats["checks"]` maps every check that ran to its effective severity (so checks with
    no findings still appear in `to_dict()` with zero counts); other keys describe the
    data (rows, symbols, first/last date, seconds).
    """

    findings: list[Finding]
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when no finding has severity "error"."""
        return not self.errors

    def by_check(self) -> list[dict[str, Any]]:
        """One row per check that ran or found something: check, severity, findings, count.

        Sorted errors first, then by number of findings (descending), then by name.
        """
        checks: dict[str, dict[str, Any]] = {}
        for name, severity in self.stats.get("checks", {}).items():
            checks[name] = {"check": name, "severity": severity, "findings": 0, "count": 0}
        for f in self.findings:
            row = checks.setdefault(
                f.check, {"check": f.check, "severity": f.severity, "findings": 0, "count": 0}
            )
            row["findings"] += 1
            row["count"] += f.count
            if f.severity == "error":
                row["severity"] = "error"
        return sorted(
            checks.values(),
            key=lambda r: (r["severity"] != "error", -r["findings"], r["check"]),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able report: verdict, per-check counts, statistics and every finding."""
        return {
            "ok": self.ok,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "checks": {
                r["check"]: {k: r[k] for k in ("severity", "findings", "count")}
                for r in sorted(self.by_check(), key=lambda r: r["check"])
            },
            "stats": {k: v for k, v in self.stats.items() if k != "checks"},
            "findings": [f.to_dict() for f in _ordered(self.findings)],
        }

    def summary_lines(self, max_lines: int = 20) -> list[str]:
        """A short plain-text table: verdict, then one line per check with findings.

        At most `max_lines` (>= 2) lines; the last says how many were left out. The first
        line is always the verdict. No printing.
        """
        verdict = "OK" if self.ok else "FAILED"
        head = f"{verdict}: {len(self.errors)} error(s), {len(self.warnings)} warning(s)"
        described = _describe_stats(self.stats)
        lines = [head + (f" ({described})" if described else "")]
        rows = [r for r in self.by_check() if r["findings"]]
        if rows:
            lines.append(f"{'check':<20} {'severity':<8} {'findings':>8} {'count':>7}  example")
        examples = {}
        for f in _ordered(self.findings):
            examples.setdefault(f.check, f)
        for r in rows:
            ex = examples[r["check"]]
            who = f"{ex.symbol}: " if ex.symbol else ""
            text = _clip(who + ex.message, 70)
            lines.append(
                f"{r['check']:<20} {r['severity']:<8} {r['findings']:>8} {r['count']:>7}  {text}"
            )
        if len(lines) > max(max_lines, 2):
            keep = max(max_lines, 2) - 1
            lines = [*lines[:keep], f"... {len(lines) - keep} more line(s)"]
        return lines


def _ordered(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(
        findings,
        key=lambda f: (f.severity != "error", f.check, f.symbol or "", f.dates[:1]),
    )


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _describe_stats(stats: dict[str, Any]) -> str:
    parts = []
    if "symbols" in stats:
        parts.append(f"{stats['symbols']} symbols")
    if "rows" in stats:
        parts.append(f"{stats['rows']} rows")
    if stats.get("first_date") and stats.get("last_date"):
        parts.append(f"{stats['first_date']}..{stats['last_date']}")
    return ", ".join(parts)
