"""The intraday family in a build (`FeatureSet.intraday`): which minute days it reads,
when an incremental build must become a full one, and from when the gates judge it.

The fields come from the intraday store of `build.intraday_timeframe`
(`aurora.intraday.daily.load_daily_fields`), joined to the prices where features are
computed (`with_intraday`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

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
from aurora.progress import Progress

if TYPE_CHECKING:
    from aurora.features.builder import BuildInputs


def load_intraday(config: AuroraConfig, inputs: BuildInputs, symbols: list[str],
                  features: FeatureSet, plan: Incremental | None, why: str,
                  progress: Progress | None, lookahead_tail: int
                  ) -> tuple[Incremental | None, str]:
    """Set `inputs.intraday` to the intraday fields the build needs; an incremental plan
    falls back to a full build when the stored minute bars of a day it would keep changed
    since the last build. An incremental build reads the minute days of the intraday
    features' own look-back before its first new session, and of the lookahead proof's
    window (its cutoff's look-back + 20 sessions), not the whole tail of the 45."""
    timeframe = config.build.intraday_timeframe
    if plan is not None:
        recorded = (plan.old_meta.get("intraday") or {}).get("sha256")
        if recorded != stored_digest(config.data_dir, timeframe, plan.last)["sha256"]:
            plan, why = None, f"the {timeframe} bars up to {plan.last} changed"
    start = None
    last = inputs.prices["date"].max()
    if plan is not None and isinstance(last, dt.date):
        reach = max(e.lookback for e in features.added.values() if uses_intraday(e))
        start = min(sessions_back(plan.first_new, reach),
                    sessions_back(sessions_back(last, lookahead_tail), reach + 20))
    inputs.intraday = load_daily_fields(config.data_dir, timeframe, start=start,
                                        symbols=symbols, progress=progress)
    return plan, why


def intraday_source(config: AuroraConfig, features: FeatureSet) -> tuple[Path, str] | None:
    """Where the intraday fields come from (data directory, timeframe), or None."""
    return (config.data_dir, config.build.intraday_timeframe) if features.intraday else None


def judged_from(config: AuroraConfig, features: FeatureSet) -> dict[str, dt.date]:
    """The features reading intraday fields, each judged by the missing gate from its
    look-back after the first stored day of minute bars."""
    first = first_stored_day(config.data_dir, config.build.intraday_timeframe)
    if not features.intraday or first is None:
        return {}
    return {name: sessions_forward(first, expr.lookback)
            for name, expr in features.added.items() if uses_intraday(expr)}
