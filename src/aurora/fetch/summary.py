"""The outcome of one fetch: counters, per-batch failures, and a short human summary.

`FetchReport.summary_lines()` returns text; it never prints (the CLI decides where lines go).
`rate_limit_wait_seconds` is time spent waiting on our own limiter or a server reset;
`backoff_seconds` is time spent backing off after failures. `version` is the version that
holds the fetched prices: the one published, or, when nothing changed (`unchanged`), the
existing version that stays latest. `assets` is the trading API's statuses the fetch used
(`AssetStatuses.record`: `inactive` symbol -> last bar date, `not_tradable`, `unknown`,
`listed`, `error`), None when it did not ask.
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
    """What a fetch did. `version` is the store version holding its prices (module doc)."""

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
    unchanged: bool = False  # nothing differed from the stored version: nothing published
    source: str = ""  # PriceSource.describe() of the prices fetched
    synthetic: bool = False  # the prices are the test bed's synthetic market
    refetch_reason: str | None = None  # why everything was fetched again, if it was
    reconciled: list[str] = field(default_factory=list)  # symbols re-read in full
    reconcile_differed: dict[str, str] = field(default_factory=dict)  # ... and found changed
    kept_unrefreshed: list[str] = field(default_factory=list)  # stored, outside the universe
    # a dated universe's symbols never a member in the stored window: recorded, not fetched
    not_members_in_window: list[str] = field(default_factory=list)
    actions_error: str | None = None  # the corporate actions could not be fetched
    checkpoints_removed: int = 0  # other plans' checkpoint directories removed
    assets: dict[str, Any] | None = None  # the asset statuses used (module docstring)

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
        if self.source:
            lines.append(f"source: {self.source}")
        if self.refetch_reason:
            lines.append(f"fetched everything again: {self.refetch_reason}")
        if self.restated:
            lines.append(f"re-fetched in full after a restatement: {_shown(self.restated)}")
        if self.reconciled:
            found = (f"{len(self.reconcile_differed)} differed and were restated: "
                     f"{_shown(self.reconcile_differed)}" if self.reconcile_differed
                     else "all matched the store")
            lines.append(f"reconciliation: re-read the whole history of "
                         f"{len(self.reconciled)} symbol(s) ({_names(self.reconciled)}); "
                         f"{found}")
        if self.not_members_in_window:
            lines.append(f"{len(self.not_members_in_window)} symbol(s) of the dated universe "
                         "are members only outside the stored window, not fetched: "
                         f"{_names(self.not_members_in_window)}")
        if self.kept_unrefreshed:
            lines.append(f"kept {len(self.kept_unrefreshed)} stored symbol(s) outside this "
                         f"universe, not refreshed: {_names(self.kept_unrefreshed)}")
        if self.actions_error:
            lines.append(f"corporate actions NOT updated ({self.actions_error}); the stored "
                         f"table ({self.corporate_actions} actions) was kept and may be stale")
        elif self.corporate_actions:
            lines.append(f"corporate actions: {self.corporate_actions}")
        lines.extend(_asset_lines(self.assets))
        for failure in self.failures:
            lines.append(f"FAILED batch {failure.batch}: {failure.error}")
        if self.warnings:
            lines.append(f"warnings ({len(self.warnings)}):")
            lines.extend(f"  - {w}" for w in self.warnings[:20])
            if len(self.warnings) > 20:
                lines.append(f"  ... {len(self.warnings) - 20} more in the report")
        if self.version and self.unchanged:
            lines.append(f"no change; version {self.version} stays latest")
        elif self.version:
            lines.append(f"published version {self.version}")
        return lines


def _asset_lines(assets: dict[str, Any] | None, limit: int = 5) -> list[str]:
    """`CELG inactive at the server: history ends 2019-11-20`, one line per inactive
    symbol (up to `limit`), then the not tradable and unknown symbols; nothing when the
    statuses were not asked or are unavailable (a warning says so)."""
    if not assets or assets.get("error"):
        return []
    inactive: dict[str, str | None] = assets.get("inactive") or {}
    lines = [f"{s} inactive at the server: " + (f"history ends {day}" if day else
                                                 "no bars in the fetched window")
             for s, day in list(inactive.items())[:limit]]
    if len(inactive) > limit:
        lines.append(f"{len(inactive) - limit} more symbol(s) inactive at the server (see "
                     "fetch_report.json)")
    if assets.get("not_tradable"):
        lines.append("active at the server but not tradable (closing trades only): "
                     f"{_names(assets['not_tradable'])}")
    if assets.get("unknown"):
        lines.append(f"not listed by the server's assets: {_names(assets['unknown'])}")
    return lines


def _names(symbols: list[str], limit: int = 10) -> str:
    more = len(symbols) - limit
    return ", ".join(symbols[:limit]) + (f" (+{more} more)" if more > 0 else "")


def _shown(reasons: dict[str, str], limit: int = 5) -> str:
    more = len(reasons) - limit
    return (", ".join(f"{s} ({r})" for s, r in list(reasons.items())[:limit])
            + (f" (+{more} more)" if more > 0 else ""))
