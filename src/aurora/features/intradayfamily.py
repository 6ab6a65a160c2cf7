"""The intraday family in a build (`FeatureSet.intraday`): which minute days it reads,
when an incremental build must become a full one, and from when the gates judge it.

`IntradaySource.pinned(config)` fixes the intraday store's version once, when the build
starts: the fields it reads and the digest it records (`features.meta.json` `intraday`)
are of that version, even if a fetch publishes another meanwhile. The fields are joined to
the prices where features are computed (`aurora.intraday.daily.with_intraday`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from aurora.calendar import sessions_back, sessions_forward
from aurora.config import AuroraConfig
from aurora.features.featureset import FeatureSet
from aurora.features.incremental import Incremental
from aurora.intraday.daily import (
    first_stored_day,
    load_daily_fields,
    stored_digest,
    uses_intraday,
)
from aurora.intraday.store import FIELDS_DATASET, intraday_store
from aurora.progress import Progress

if TYPE_CHECKING:
    from aurora.features.builder import BuildInputs


@dataclass(frozen=True)
class IntradaySource:
    """The intraday store of `timeframe` under `data_dir`, at `version` (None: nothing
    stored yet; reading then raises the StoreError that says what to fetch)."""

    data_dir: Path
    timeframe: str
    version: str | None

    @classmethod
    def pinned(cls, config: AuroraConfig) -> IntradaySource:
        timeframe = config.build.intraday_timeframe
        return cls(config.data_dir, timeframe,
                   intraday_store(config.data_dir, timeframe).current_version())

    def fields(self, *, start: dt.date | None = None, end: dt.date | None = None,
               symbols: Collection[str] | None = None,
               progress: Progress | None = None) -> pl.DataFrame:
        """`load_daily_fields` of this version."""
        return load_daily_fields(self.data_dir, self.timeframe, start=start, end=end,
                                 symbols=symbols, progress=progress, version=self.version)

    def digest(self, through: dt.date) -> dict[str, Any]:
        """`stored_digest` of this version."""
        return stored_digest(self.data_dir, self.timeframe, through, self.version)

    def first_day(self) -> dt.date | None:
        return first_stored_day(self.data_dir, self.timeframe, self.version)


def load_intraday(source: IntradaySource, inputs: BuildInputs, symbols: list[str],
                  features: FeatureSet, plan: Incremental | None, why: str,
                  progress: Progress | None, lookahead_tail: int
                  ) -> tuple[Incremental | None, str]:
    """Set `inputs.intraday` to the intraday fields the build needs; an incremental plan
    falls back to a full build when the fields' definitions, or the stored minute bars of
    a day it would keep, changed since the last build. An incremental build reads the
    minute days of the intraday features' own look-back before the first session it
    computes (`Incremental.since`),
    and of the lookahead proof's window (its cutoff's look-back + 20 sessions), not the
    whole tail of the 45."""
    if plan is not None:
        recorded = plan.old_meta.get("intraday") or {}
        if recorded.get("fields") != FIELDS_DATASET:
            plan, why = None, "the intraday fields' definitions changed"
        elif recorded.get("sha256") != source.digest(plan.last)["sha256"]:
            plan, why = None, f"the {source.timeframe} bars up to {plan.last} changed"
    start = None
    last = inputs.prices["date"].max()
    if plan is not None and isinstance(last, dt.date):
        reach = max(e.lookback for e in features.added.values() if uses_intraday(e))
        start = min(sessions_back(plan.since, reach),
                    sessions_back(sessions_back(last, lookahead_tail), reach + 20))
    inputs.intraday = source.fields(start=start, symbols=symbols, progress=progress)
    return plan, why


def judged_from(source: IntradaySource | None, features: FeatureSet) -> dict[str, dt.date]:
    """The features reading intraday fields, each judged by the missing gate from its
    look-back after the first stored day of minute bars."""
    first = source.first_day() if source is not None else None
    if first is None:
        return {}
    return {name: sessions_forward(first, expr.lookback)
            for name, expr in features.added.items() if uses_intraday(expr)}
