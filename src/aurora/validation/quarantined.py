"""How a validation report treats quarantined and released symbols (`aurora.quarantine`).

`apply_quarantine(report, record, severities)` returns a new report in which:
- every error about a symbol `record` holds as quarantined is a warning, its message
  ending `(symbol quarantined)`: the quarantine already keeps the symbol's bars out of
  what the fetch publishes, so its stale or missing bars are the quarantine's doing, and
  the one place its problem is reported as such is the next point;
- each quarantined symbol has one `quarantined` finding (default severity warning; the
  `quarantined` key of `[validation] severities` may make it an error or ignore it) naming
  the problems, every date, since when and which version, and how to release it;
- an error that a release accepted (`QuarantineRecord.accepts`: the same symbol and check,
  all its dates accepted) is a warning whose message names the release;
- every error about a released symbol whose history no fetch has read again yet
  (`Release.refetch`) is a warning ending `(released; ...)`: its bars are still those kept
  by the quarantine until that fetch;
- `stats["quarantined"]` lists the quarantined symbols and `stats["checks"]` has
  `quarantined`.
Nothing else changes; nothing is dropped except `quarantined` findings configured
"ignore" (counted in `stats["ignored"]`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from aurora.quarantine import QuarantineEntry, QuarantineRecord
from aurora.validation.findings import CHECKS, Finding, ValidationReport
from aurora.validation.prices import apply_severities

CHECK = "quarantined"


def quarantined_finding(entry: QuarantineEntry) -> Finding:
    """The `quarantined` finding of one entry (default severity)."""
    since = f"since {entry.quarantined_at}" + (f" (version {entry.version})"
                                              if entry.version else "")
    return Finding(
        check=CHECK, severity=CHECKS[CHECK], symbol=entry.symbol, dates=entry.dates,
        count=len(entry.dates) or 1,
        message=(f"{entry.reason()} {since}: {entry.message}; its bars are not updated until "
                 f"`aurora quarantine release {entry.symbol}` (or a fetch that finds them "
                 "fixed)"))


def apply_quarantine(report: ValidationReport, record: QuarantineRecord,
                     severities: Mapping[str, str] | None = None) -> ValidationReport:
    """The report with quarantined and released symbols treated as the module says."""
    releases = {r.entry.symbol: r for r in record.released}
    pending = record.pending_refetch()
    findings: list[Finding] = []
    for f in report.findings:
        if f.severity != "error" or f.symbol is None:
            findings.append(f)
        elif f.symbol in record.quarantined:
            findings.append(replace(f, severity="warning",
                                    message=f"{f.message} (symbol quarantined)"))
        elif f.symbol in pending:
            findings.append(replace(f, severity="warning", message=(
                f"{f.message} (released; its bars are updated by the next fetch)")))
        elif record.accepts(f.symbol, f.check, f.dates):
            release = releases[f.symbol]
            why = f": {release.reason}" if release.reason else ""
            findings.append(replace(f, severity="warning", message=(
                f"{f.message} (accepted: released by {release.released_by} on "
                f"{release.released_at[:10]}{why})")))
        else:
            findings.append(f)
    added, ignored = apply_severities(
        [quarantined_finding(record.quarantined[s]) for s in record.symbols()],
        dict(severities or {}))
    stats = dict(report.stats)
    stats["checks"] = {**stats.get("checks", {}),
                       CHECK: dict(severities or {}).get(CHECK, CHECKS[CHECK])}
    stats["quarantined"] = record.symbols()
    if ignored:
        stats["ignored"] = {**stats.get("ignored", {}), **ignored}
    return ValidationReport(findings + added, stats)
