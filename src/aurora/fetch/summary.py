"""The outcome of one fetch: counters, per-batch failures, and a short human summary.

`FetchReport.summary_lines()` returns text; it never prints (the CLI decides where lines go).
`rate_limit_wait_seconds` is time spent waiting on our own limiter or a server reset;
`backoff_seconds` is time spent backing off after failures.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class BatchFailure:
    """A batch that still failed after its retries."""

    batch: str  # BatchRequest.label()
    symbols: tuple[str, ...]
    error: str


@dataclass
class FetchReport:
    """What a fetch did. `version` is the published store version (None if nothing published)."""

    symbols: int = 0
    bars: int = 0
    sessions: int = 0
    date_min: dt.date | None = None
    date_max: dt.date | None = None
    bars_fetched: int = 0
    batches: int = 0
    batches_resumed: int = 0
    symbols_up_to_date: int = 0
    restated: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    successful_requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    rate_limit_wait_seconds: float = 0.0
    backoff_seconds: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
    elapsed_seconds: float = 0.0
    corporate_actions: int = 0
    warnings: list[str] = field(default_factory=list)
    failures: list[BatchFailure] = field(default_factory=list)
    validation: dict[str, Any] | None = None
    version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["date_min"] = self.date_min.isoformat() if self.date_min else None
        out["date_max"] = self.date_max.isoformat() if self.date_max else None
        out["rate_limit_wait_seconds"] = round(self.rate_limit_wait_seconds, 3)
        out["backoff_seconds"] = round(self.backoff_seconds, 3)
        out["elapsed_seconds"] = round(self.elapsed_seconds, 3)
        out.pop("validation")
        return out

    def summary_lines(self) -> list[str]:
        """A few lines for a person: what was stored, what it cost, what to look at."""
        span = f"{self.date_min}..{self.date_max}" if self.date_min else "no data"
        lines = [
            f"stored {self.bars:,} bars: {self.symbols} symbols x {self.sessions} sessions "
            f"({span})",
            f"fetched {self.bars_fetched:,} bars in {self.batches} batches"
            + (f" ({self.batches_resumed} resumed from a checkpoint)"
               if self.batches_resumed else "")
            + (f"; {self.symbols_up_to_date} symbols already up to date"
               if self.symbols_up_to_date else ""),
            f"requests: {self.requests} ({self.successful_requests} ok, {self.retries} retried, "
            f"{self.rate_limited} rate-limited); waited {self.rate_limit_wait_seconds:.1f} s on "
            f"the rate limit, {self.backoff_seconds:.1f} s backing off; "
            f"{self.elapsed_seconds:.1f} s in all",
        ]
        if self.restated:
            shown = ", ".join(f"{s} ({r})" for s, r in list(self.restated.items())[:5])
            more = len(self.restated) - 5
            lines.append(f"re-fetched in full after a restatement: {shown}"
                         + (f" (+{more} more)" if more > 0 else ""))
        if self.corporate_actions:
            lines.append(f"corporate actions: {self.corporate_actions}")
        for failure in self.failures:
            lines.append(f"FAILED batch {failure.batch}: {failure.error}")
        if self.warnings:
            lines.append(f"warnings ({len(self.warnings)}):")
            lines.extend(f"  - {w}" for w in self.warnings[:20])
            if len(self.warnings) > 20:
                lines.append(f"  ... {len(self.warnings) - 20} more in the report")
        if self.version:
            lines.append(f"published version {self.version}")
        return lines
