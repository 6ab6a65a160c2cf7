"""Compute the features from adjusted prices: the pure, store-free part of the build.

1. align: long bars -> wide float64 matrices, one row per symbol and one column per NYSE
   session (`wide.align_wide`);
2. evaluate: the registry's expressions (plus any user features) by the planner of
   `aurora.features.engine`, written straight into long output columns;
3. frame: those columns as a long frame of (symbol, session) rows with every look-back full
   (each symbol's sessions from `max look-back` after its first bar to its last bar), sorted
   by (symbol, date), NaN as null; for a dated universe only members' rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from aurora.features.engine import BLOCK_CELLS, Emission, evaluate
from aurora.features.expr import Expr, Field
from aurora.features.panel import PanelInfo
from aurora.features.parallel import default_workers, map_blocks
from aurora.features.registry import feature_set
from aurora.features.wide import WidePanel, align_wide
from aurora.membership import Membership
from aurora.progress import Progress, no_progress
from aurora.schemas import INTRADAY_FIELDS


@dataclass
class FeatureFrame:
    """The emitted features plus what the computation learned about its inputs."""

    features: pl.DataFrame
    info: PanelInfo
    turnover_fallback: dict[str, int]
    ignored_symbols: list[str]
    outside_membership: int = 0  # emitted rows left out: the symbol was not a member then


def compute_panel(
    prices: pl.DataFrame,
    *,
    sectors: Mapping[str, str] | pl.DataFrame | None,
    fundamentals: pl.DataFrame | None = None,
    actions: pl.DataFrame | None = None,
    universe: Sequence[str] | None = None,
    membership: Membership | None = None,
    extra: Mapping[str, Expr] | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
    block_cells: int = BLOCK_CELLS,
    shares: pl.DataFrame | None = None,
    windowed: bool = False,
    spans: pl.DataFrame | None = None,
    since: np.datetime64 | None = None,
    until: np.datetime64 | None = None,
    counted_since: Mapping[str, dt.date] | None = None,
) -> FeatureFrame:
    """Every feature for every (symbol, session) whose look-backs are full.

    prices: adjusted bars (store prices schema; optional `dollar_volume` overrides close x
    volume; intraday features read the `intraday_*` columns of `with_intraday`). sectors:
    symbol -> sector (None: Aurora's default map). fundamentals: symbol, as_of, and
    shares_outstanding and/or market_cap in USD (point in time from as_of). actions: used
    only to put shares_outstanding on the volume's basis. universe: only these symbols (the
    others are listed as ignored). membership: a dated universe (None: every symbol always a
    member): series use all of a symbol's bars, per-date operators only that date's members,
    and only members' rows are emitted (`outside_membership` counts the others). extra:
    user features after the registry's. workers: threads (None: `default_workers()`) and
    block_cells (cells per block): memory/speed knobs that never change the result.
    For a part of the history (an incremental build's tail, the lookahead gate): shares:
    `panel.shares_table` of the whole history (a market cap is put on the volume basis with
    the last bar before it); windowed: `engine` docstring, 6; spans (`panel.bar_spans` of
    the whole: each symbol's first and last bar): its rows and windows start and end where
    the whole's do; since/until: rows in them only; counted_since: `turnover_fallback` and
    `outside_membership` count each symbol's rows from this date (default: every row).
    Returns columns date, symbol and the features (Float64), sorted by (symbol, date).
    """
    report = progress or no_progress
    ignored: list[str] = []
    if universe is not None:
        wanted = set(universe)
        ignored = sorted(set(prices["symbol"].unique().to_list()) - wanted)
        prices = prices.filter(pl.col("symbol").is_in(list(wanted)))
    features = feature_set(extra)
    fields = {n.name for e in features.values() for n in e.walk() if isinstance(n, Field)}
    threads = default_workers() if workers is None else max(1, workers)
    report("align", 0, 1)
    panel, info = align_wide(prices, sectors=sectors, fundamentals=fundamentals,
                             actions=actions, optional=sorted(fields & {"vwap", *INTRADAY_FIELDS}),
                             shares=shares, workers=threads)
    report("align", 1, 1)
    if spans is not None:
        known = pl.DataFrame({"symbol": panel.symbols}, schema={"symbol": pl.String}).join(
            spans.select("symbol", "first", "last"), on="symbol", how="left",
            maintain_order="left")
        if known["first"].null_count() or known["last"].null_count():
            unknown = known.filter(pl.col("first").is_null() | pl.col("last").is_null())
            raise ValueError(f"spans: no first and last bar for {unknown['symbol'][0]}")
        first, last = (known[k].to_numpy().astype("datetime64[D]") for k in ("first", "last"))
        panel.start = np.minimum(panel.start, np.searchsorted(panel.dates, first))
        panel.end = np.maximum(panel.end, np.searchsorted(panel.dates, last, "right") - 1)
    if until is not None:
        panel.end = np.minimum(panel.end, np.searchsorted(panel.dates, until, "right") - 1)
    emission = Emission.of(panel, max(e.lookback for e in features.values()),
                           0 if since is None else int(np.searchsorted(panel.dates, since)))
    member = None if membership is None else membership.mask(panel.symbols, panel.dates)
    counted = emission.first
    if counted_since is not None:
        days = np.array([counted_since.get(s, panel.dates[0]) for s in panel.symbols],
                        dtype="datetime64[D]")
        counted = np.maximum(counted, np.searchsorted(panel.dates, days))
    fallback = _fallback_rows(panel, counted)  # before `evaluate` releases the fields
    columns = evaluate(features, panel, emission, member=member, workers=threads,
                       block_cells=block_cells, windowed=windowed, report=report)
    report("emit", 0, 1)
    frame, outside = _frame(panel, emission, columns, member, counted, 1 if windowed else threads)
    report("emit", 1, 1)
    return FeatureFrame(frame, info, fallback, ignored, outside)


def _frame(panel: WidePanel, emission: Emission, columns: Mapping[str, np.ndarray],
           member: np.ndarray | None, counted: np.ndarray, workers: int = 1
           ) -> tuple[pl.DataFrame, int]:
    """The long frame over the output columns (no copy of them), without non-members' rows,
    and how many of those it left out from column counted[i] on in row i; `workers`
    threads find the columns' missing cells."""
    counts = np.diff(emission.offset)
    row = np.repeat(np.arange(len(counts), dtype=np.uint32), counts)
    column = (np.arange(emission.rows, dtype=np.int64)
              - np.repeat(emission.offset[:-1] - emission.first, counts)).astype(np.uint32)
    day = panel.dates.astype("datetime64[D]").astype(np.int32)
    series = [pl.Series("date", day[column], dtype=pl.Int32).cast(pl.Date),
              pl.Series("symbol", panel.symbols, dtype=pl.String).gather(
                  pl.Series(row, dtype=pl.UInt32))]
    series += map_blocks(lambda item: _nullable(*item), list(columns.items()), workers)
    frame = pl.DataFrame(series)
    if member is None:
        return frame, 0
    keep = member[row, column]
    if keep.all():
        return frame, 0
    left_out = int(np.count_nonzero(~keep & (column >= counted[row])))
    return frame.filter(pl.Series(keep)), left_out


def _nullable(name: str, values: np.ndarray) -> pl.Series:
    """A Float64 series over `values` (no copy) with the NaNs as nulls."""
    present = ~np.isnan(values)
    missing = len(values) - int(np.count_nonzero(present))
    bitmap = np.packbits(present, bitorder="little")
    buffers = [pa.py_buffer(bitmap) if missing else None, pa.py_buffer(values)]
    array = pa.Array.from_buffers(pa.float64(), len(values), buffers, null_count=missing)
    return pl.Series(_Exported(array)).alias(name)


@dataclass(frozen=True)
class _Exported:
    """An Arrow array seen only through the Arrow PyCapsule interface: polars takes it
    without a copy, and without loading pyarrow.compute as `pl.from_arrow` does."""

    array: pa.Array

    def __arrow_c_array__(self, requested_schema: object = None) -> object:
        return self.array.__arrow_c_array__(requested_schema)


def _fallback_rows(panel: WidePanel, first: np.ndarray) -> dict[str, int]:
    """symbol -> rows from column first[i] to the symbol's last bar without shares
    outstanding known (the turnover fallback)."""
    cols = np.arange(panel.shape[1])
    counted = (cols >= first[:, None]) & (cols <= panel.end[:, None])
    counted &= np.isnan(panel["shares_outstanding"])
    counts = np.count_nonzero(counted, axis=1)
    return {panel.symbols[i]: int(counts[i]) for i in np.flatnonzero(counts)}


def compute_features(prices: pl.DataFrame, **options: Any) -> pl.DataFrame:
    """The feature frame of `compute_panel(prices, **options)` alone (notebooks, tests)."""
    return compute_panel(prices, **options).features
