"""A computation cut into blocks of sessions: the unit of an out-of-core build's tasks
(`aurora.features.outofcore`, on this process or a Dask cluster, `aurora.cluster`).

A block holds the NYSE sessions of one period of a calendar year (`block_periods`). Its
rows are computed by `compute_panel` (windowed) from the prices of `max look-back`
sessions before its first session to its last one, told each symbol's first and last bar
in the whole history (`spans`: a symbol missing bars at the tail's start or the year's end
keeps its rows and windows) and emitting only the period's rows (`since`, `until`): the
computation of an incremental build's tail (`aurora.features.incremental`). So a block
reads its period plus the look-back of prices whatever the history (plus the shared
inputs: sectors, fundamentals, the spans), its rows are the same rows as a one-piece
build's with values equal to 1e-9 relative (running-window sums start afresh at the
tail), and it is the same code on the same inputs wherever it runs.

Cross-sectional operators see every symbol of a date, as they do in a one-piece build,
because a block cuts time, never the universe.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import polars as pl

from aurora.calendar import sessions, sessions_back
from aurora.cluster import LocalRunner, Runner
from aurora.features.compute import FeatureFrame, compute_panel
from aurora.features.expr import Expr
from aurora.features.operators import Custom
from aurora.features.panel import bar_spans
from aurora.features.userfeatures import USER_MODULES
from aurora.membership import Membership

TASKS = "blocks"  # the progress stage name


@dataclass(frozen=True)
class Period:
    """The sessions `first` .. `last` of a block and the dates of the prices it reads:
    from `start`, the last date with bars at or before `max look-back` sessions before
    `first`, to `after`, the first date with bars after `last` (so the block's session
    grid covers its whole period)."""

    first: dt.date
    last: dt.date
    start: dt.date
    after: dt.date


@dataclass(frozen=True)
class Block:
    """A period's sessions, first .. last, and the prices they read (`Period`)."""

    first: dt.date
    last: dt.date
    prices: pl.DataFrame


@dataclass(frozen=True)
class Shared:
    """What every block reads whole (sent to each worker once): the inputs, each
    symbol's first and last bar in the whole history (`panel.bar_spans`), and the threads a
    block computes with (1 on a cluster, whose workers run one task per thread; None, all
    cores, for blocks run one after another in this process; results do not depend on it)."""

    sectors: Mapping[str, str] | pl.DataFrame | None
    fundamentals: pl.DataFrame | None
    actions: pl.DataFrame | None
    universe: Sequence[str] | None
    membership: Membership | None
    extra: Mapping[str, Expr] | None
    shares: pl.DataFrame | None
    spans: pl.DataFrame
    threads: int | None = 1


def block_periods(days: pl.Series, lookback: int, months: int = 12) -> list[Period]:
    """One period per calendar year (or per `months`-month part of a year: 1, 2, 3, 4, 6
    or 12; ValueError otherwise) holding NYSE sessions between the first and the last of
    `days` (the sorted dates with bars), each with the dates its look-back reads."""
    if months not in (1, 2, 3, 4, 6, 12):
        raise ValueError(f"block months must divide a year (1, 2, 3, 4, 6 or 12), got {months}")
    lo, hi = days.min(), days.max()
    if not isinstance(lo, dt.date) or not isinstance(hi, dt.date):
        return []
    found = []
    for y in range(lo.year, hi.year + 1):
        for m in range(1, 13, months):
            period_start = dt.date(y, m, 1)
            next_start = dt.date(y + (m + months > 12), (m + months - 1) % 12 + 1, 1)
            inside = sessions(max(lo, period_start), min(hi, next_start - dt.timedelta(days=1)))
            if not inside:
                continue
            first, last = inside[0], inside[-1]
            start = days.filter(days <= sessions_back(first, lookback)).max() or lo
            after = days.filter(days > last).min() or hi
            assert isinstance(start, dt.date) and isinstance(after, dt.date)
            found.append(Period(first, last, start, after))
    return found


def with_absent(rows: pl.DataFrame, spans: pl.DataFrame, period: Period) -> pl.DataFrame:
    """`rows` (a period's prices) plus one empty bar (every value null) on `period.start`
    for each symbol alive in the period (`spans`) without any bar in them, a long
    suspension: it keeps its rows there as in a one-piece build."""
    absent = spans.filter((pl.col("first") <= period.last) & (pl.col("last") >= period.first)
                          & ~pl.col("symbol").is_in(rows["symbol"].unique().implode()))
    if absent.height == 0:
        return rows
    return pl.concat([rows, absent.select("symbol", date=pl.lit(period.start, pl.Date))],
                     how="diagonal_relaxed")


def year_blocks(prices: pl.DataFrame, lookback: int,
                spans: pl.DataFrame | None = None, months: int = 12) -> list[Block]:
    """The `block_periods` of `prices` (default spans: `bar_spans(prices)`), each with its
    rows of `prices` (`with_absent`)."""
    spans = bar_spans(prices) if spans is None else spans
    days = prices.get_column("date").unique().sort()
    return [Block(p.first, p.last,
                  with_absent(prices.filter(pl.col("date").is_between(p.start, p.after)),
                              spans, p))
            for p in block_periods(days, lookback, months)]


def compute_block(block: Block, shared: Shared) -> FeatureFrame:
    """The FeatureFrame of one block's own sessions (a task: module-level, pickles)."""
    frame = compute_panel(block.prices, sectors=shared.sectors,
                          fundamentals=shared.fundamentals, actions=shared.actions,
                          universe=shared.universe, membership=shared.membership,
                          extra=shared.extra, shares=shared.shares, windowed=True,
                          workers=shared.threads,
                          spans=shared.spans, since=np.datetime64(block.first),
                          until=np.datetime64(block.last))
    return frame


def threads_for(runner: Runner) -> int | None:
    """`Shared.threads` for blocks run by `runner`."""
    return None if isinstance(runner, LocalRunner) else 1


def user_modules(extra: Mapping[str, Expr] | None) -> list[ModuleType]:
    """The feature files (`aurora.features.userfeatures` loads each as a module of the
    package USER_MODULES) whose `custom` functions the user features call: a worker cannot
    import them by name."""
    found = {}
    for expr in (extra or {}).values():
        for node in expr.walk():
            name = getattr(node.fn, "__module__", None) if isinstance(node, Custom) else None
            if name and name.startswith(f"{USER_MODULES}.") and name in sys.modules:
                found[name] = sys.modules[name]
    return list(found.values())
