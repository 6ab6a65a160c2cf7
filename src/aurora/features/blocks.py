"""A full build as independent blocks of sessions, one per calendar year: the tasks that
`aurora build --scheduler` sends to a Dask cluster (`aurora.cluster`).

A block holds the sessions of one year. Its rows are computed by `compute_panel` (windowed)
from the prices of `max look-back` sessions before its first session to its last one, then
kept from its first session on: the computation of an incremental build's tail
(`aurora.features.incremental`). So every block reads only its own tail (memory per task is
bounded by one year plus the look-back, whatever the history), a block's rows equal the
same rows of a one-piece build to 1e-9 relative (running-window sums start afresh at the
tail), and a build on a cluster is bit for bit the same as `compute_blocks` in process with
the same blocks: each block is the same code on the same inputs wherever it runs.

Cross-sectional operators see every symbol of a date, as they do in a one-piece build,
because a block cuts time, never the universe.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import polars as pl

from aurora.calendar import sessions, sessions_back
from aurora.cluster import LocalRunner, Runner
from aurora.features.compute import FeatureFrame, compute_panel, feature_set
from aurora.features.expr import Expr
from aurora.features.operators import Custom
from aurora.features.panel import PanelInfo, shares_table
from aurora.features.userfeatures import USER_MODULES
from aurora.membership import Membership

_KEY = ["symbol", "date"]
TASKS = "blocks"  # the progress stage name


@dataclass(frozen=True)
class Block:
    """The sessions first .. last (a calendar year of the prices) and the prices they read:
    from `max look-back` sessions before `first` to `last`, and each symbol's next bar
    after `last` (a symbol's rows run to its last bar: one missing on the year's last
    sessions still has rows there, as in a one-piece build)."""

    first: dt.date
    last: dt.date
    prices: pl.DataFrame


@dataclass(frozen=True)
class Shared:
    """What every block reads whole (sent to each worker once)."""

    sectors: Mapping[str, str] | pl.DataFrame | None
    fundamentals: pl.DataFrame | None
    actions: pl.DataFrame | None
    universe: Sequence[str] | None
    membership: Membership | None
    extra: Mapping[str, Expr] | None
    shares: pl.DataFrame | None


def year_blocks(prices: pl.DataFrame, lookback: int) -> list[Block]:
    """One block per calendar year of `prices`' dates, each with its look-back tail."""
    dates = prices.get_column("date")
    lo, hi = dates.min(), dates.max()
    if not isinstance(lo, dt.date) or not isinstance(hi, dt.date):
        return []
    blocks = []
    years = dates.dt.year()
    for year in years.unique().sort().to_list():
        inside = dates.filter(years == year)
        first, last = inside.min(), inside.max()
        assert isinstance(first, dt.date) and isinstance(last, dt.date)
        following = (prices.filter(pl.col("date") > last).group_by("symbol")
                     .agg(pl.col("date").min()))
        rows = pl.concat([prices.filter(pl.col("date").is_between(sessions_back(first, lookback),
                                                                   last)),
                          prices.join(following, on=["symbol", "date"], how="semi")])
        blocks.append(Block(first, last, rows))
    return blocks


def compute_blocks(
    prices: pl.DataFrame,
    *,
    sectors: Mapping[str, str] | pl.DataFrame | None,
    fundamentals: pl.DataFrame | None = None,
    actions: pl.DataFrame | None = None,
    universe: Sequence[str] | None = None,
    membership: Membership | None = None,
    extra: Mapping[str, Expr] | None = None,
    runner: Runner | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> FeatureFrame:
    """`compute_panel`'s FeatureFrame for all of `prices`, computed as year blocks by
    `runner` (default: in this process); see the module docstring."""
    ignored: list[str] = []
    if universe is not None:
        ignored = sorted(set(prices["symbol"].unique().to_list()) - set(universe))
        prices = prices.filter(pl.col("symbol").is_in(list(universe)))
    lookback = max(e.lookback for e in feature_set(extra).values())
    blocks = year_blocks(prices, lookback)
    shares_info = PanelInfo()
    shared = Shared(sectors, fundamentals, actions, universe, membership, extra,
                    shares_table(fundamentals, prices, actions, shares_info))
    report = (lambda done, total: progress(TASKS, done, total)) if progress else None
    if report is not None:
        report(0, len(blocks))
    runner = runner or LocalRunner()
    runner.ship_code(_user_modules(extra))
    parts = runner.map(compute_block, blocks, shared=shared, progress=report)
    return _combine(parts, prices, ignored, shares_info.shares_source)


def compute_block(block: Block, shared: Shared) -> FeatureFrame:
    """The FeatureFrame of one block's own sessions (a task: module-level, pickles)."""
    frame = compute_panel(block.prices, sectors=shared.sectors,
                          fundamentals=shared.fundamentals, actions=shared.actions,
                          universe=shared.universe, membership=shared.membership,
                          extra=shared.extra, shares=shared.shares, windowed=True, workers=1,
                          until=np.datetime64(block.last))
    assert frame.features.height == 0 or frame.features["date"].min() >= block.first
    return frame


def _combine(parts: Sequence[FeatureFrame], prices: pl.DataFrame, ignored: list[str],
             shares_source: str) -> FeatureFrame:
    """One FeatureFrame from the blocks' (rows sorted by symbol, date; counts summed; the
    grid counts of the whole history)."""
    if not parts:
        return FeatureFrame(pl.DataFrame(schema={"date": pl.Date, "symbol": pl.String}),
                            PanelInfo(), {}, ignored)
    features = pl.concat([p.features for p in parts])
    features = features[features.select(pl.struct(_KEY).arg_sort()).to_series()]
    fallback: dict[str, int] = {}
    for part in parts:
        for symbol, rows in part.turnover_fallback.items():
            fallback[symbol] = fallback.get(symbol, 0) + rows
    first = parts[0].info
    grid_rows, missing = _grid_counts(prices)
    info = PanelInfo(unknown_sector=sorted({s for p in parts for s in p.info.unknown_sector}),
                     sector_source=first.sector_source,
                     shares_source=shares_source,
                     missing_bars=missing, grid_rows=grid_rows)
    return FeatureFrame(features, info, fallback, ignored,
                        sum(p.outside_membership for p in parts))


def _grid_counts(prices: pl.DataFrame) -> tuple[int, int]:
    """(sessions from each symbol's first bar to its last, summed; of those, the sessions
    without a bar): `PanelInfo.grid_rows` and `missing_bars` of the whole history."""
    spans = prices.group_by("symbol").agg(pl.col("date").min().alias("lo"),
                                          pl.col("date").max().alias("hi"), pl.len())
    if spans.height == 0:
        return 0, 0
    days = np.array(sessions(spans["lo"].min(), spans["hi"].max()), dtype="datetime64[D]")
    lo = np.searchsorted(days, spans["lo"].to_numpy().astype("datetime64[D]"))
    hi = np.searchsorted(days, spans["hi"].to_numpy().astype("datetime64[D]"))
    grid = int((hi - lo + 1).sum())
    return grid, grid - int(spans["len"].sum())


def _user_modules(extra: Mapping[str, Expr] | None) -> list[ModuleType]:
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
