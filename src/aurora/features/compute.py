"""Compute the 45 features from adjusted prices: the pure, store-free part of the build.

Stages, each vectorised over the whole panel (no loop over symbols or dates):

1. align: long bars -> wide float64 matrices, one row per symbol and one column per NYSE
   session (`wide.align_wide`);
2. series + market: price, volume, market-beta and residual features; running-window kernels
   along each row, so a symbol's values, to the last bit, depend only on its own bars up to t
   (and on the per-date equal-weight market return `_mkt`, computed from every symbol's
   f_ret_1d first);
3. cross: per-date ranks, z-scores and sector neutralisation down each column, on the
   date x symbol matrices of `CROSS_INPUTS`;
4. emit: the cells of each symbol's span with at least MAX_LOOKBACK prior sessions, so every
   look-back is full, as a long frame sorted by (symbol, date).

Every feature (and helper) is masked to missing outside its symbol's span, while fewer than
`lookback` sessions precede t, and where the result is non-finite (a 0/0 on a flat window);
missing values are nulls in the output and count as missing in the gates.

Memory layout: stage 2 runs on blocks of whole symbols and stage 3 on blocks of whole dates
(about BLOCK_CELLS cells each, vectorised inside the block; blocks are independent, so the
result does not depend on the blocking) and each block writes its emitted cells straight into
the output columns. Temporaries stay a few MB (reused by the allocator instead of fresh pages
for every 60 MB intermediate). With `workers` > 1 the blocks of each stage run on forked
processes writing into shared-memory output columns (`parallel.run_blocks`); every cell is
computed by the same code on the same block, so the result equals the in-process one bit
for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from aurora.features.panel import PanelInfo
from aurora.features.parallel import default_workers, run_blocks, shared_empty
from aurora.features.registry import CROSS_INPUTS, FEATURE_NAMES, MAX_LOOKBACK, REGISTRY
from aurora.features.residual import HELPERS, market_return
from aurora.features.spec import FeatureSpec
from aurora.features.wide import WidePanel, align_wide

Progress = Callable[[str, int, int], None]
DEFAULT_CHUNK_ROWS = 1_000_000  # accepted for compatibility; blocks are sized by BLOCK_CELLS
BLOCK_CELLS = 600_000


@dataclass
class FeatureFrame:
    """The emitted features plus what the computation learned about its inputs."""

    features: pl.DataFrame
    info: PanelInfo
    turnover_fallback: dict[str, int]
    ignored_symbols: list[str]


@contextmanager
def _small_pages() -> Iterator[None]:
    """Do not ask for transparent huge pages while the build runs (restored afterwards).

    numpy madvises large arrays for huge pages; under the common THP defrag policy `madvise`
    every fresh huge page then waits for direct memory compaction, which made first-touch
    of memory ~5x slower than the arithmetic on the machines we measured. The build touches
    GBs of fresh memory once, so it opts out. Process-wide numpy setting: other threads
    allocating meanwhile get normal pages, which is only a performance difference.
    """
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray  # type: ignore[no-redef]
    setter = getattr(multiarray, "_set_madvise_hugepage", None)
    previous = setter(False) if setter is not None else None
    try:
        yield
    finally:
        if setter is not None and previous is not None:
            setter(previous)


Masks = Callable[[int], np.ndarray]


def _masks(panel: WidePanel, transposed: bool = False) -> Masks:
    """lookback -> panel.valid(lookback, transposed), each mask computed once."""
    cache: dict[int, np.ndarray] = {}

    def valid(lookback: int) -> np.ndarray:
        if lookback not in cache:
            cache[lookback] = panel.valid(lookback, transposed)
        return cache[lookback]
    return valid


def _evaluate(spec: FeatureSpec, panel: WidePanel, valid: Masks) -> np.ndarray:
    """spec.fn on the panel, masked: NaN outside the span, inside the look-back, non-finite.
    valid: the panel's masks (`_masks`). The result is a fresh array (masked in place)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        value = np.asarray(spec.fn(panel), dtype=np.float64)
        if not value.flags.writeable or any(
                np.may_share_memory(value, a) for a in panel.arrays.values()):
            value = value.copy(order="K")  # fn returned (a view of) an input
        drop = np.isfinite(value)
        drop &= valid(spec.lookback)
        np.logical_not(drop, out=drop)
        np.putmask(value, drop, np.nan)
    return value


def _specs(stage: str) -> list[FeatureSpec]:
    return [s for s in REGISTRY if s.stage == stage]


def _blocks(n: int, size: int) -> list[slice]:
    size = max(1, size)
    return [slice(i, min(n, i + size)) for i in range(0, n, size)]


def _nullable(name: str, values: np.ndarray) -> pl.Series:
    """A Float64 series over `values` (no copy) with NaN as null."""
    valid = ~np.isnan(values)
    bitmap = np.packbits(valid, bitorder="little")
    array = pa.Array.from_buffers(pa.float64(), len(values),
                                  [pa.py_buffer(bitmap), pa.py_buffer(values)],
                                  null_count=int(len(values) - np.count_nonzero(valid)))
    series = pl.from_arrow(array)
    assert isinstance(series, pl.Series)
    return series.alias(name)


class _Build:
    """The output columns and the cross-stage inputs of one panel, filled block by block."""

    def __init__(self, panel: WidePanel, shared: bool) -> None:
        self.panel = panel
        rows, cols = panel.shape
        self.emit_start = panel.start + MAX_LOOKBACK
        counts = np.maximum(panel.end - self.emit_start + 1, 0)
        self.offset = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        total = int(self.offset[-1])
        # written by the blocks (possibly in worker processes): shared when `shared`
        self.out = {name: shared_empty((total,), shared) for name in FEATURE_NAMES}
        self.cross = {name: shared_empty((cols, rows), shared)  # date-major
                      for name in CROSS_INPUTS}
        self.fallback = shared_empty((rows,), shared, np.int64)
        self.mkt = np.empty(cols)

    def returns(self, sl: slice) -> None:
        sub = self.panel.rows(sl, {})
        self.cross["f_ret_1d"][:, sl] = _evaluate(_RET, sub, _masks(sub)).T

    def series(self, sl: slice) -> None:
        """Every series and market feature of the symbols in `sl`."""
        ret = np.ascontiguousarray(self.cross["f_ret_1d"][:, sl].T)
        sub = self.panel.rows(sl, {"f_ret_1d": ret})
        sub.arrays["_mkt"] = np.broadcast_to(self.mkt, ret.shape)
        valid = _masks(sub)
        for spec in (*_specs("series"), *HELPERS, *_specs("market")):
            if spec is not _RET:
                sub.arrays[spec.name] = _evaluate(spec, sub, valid)
        # each symbol's emitted cells are one contiguous run of its row and of the output
        runs = [(i - sl.start, int(self.offset[i]), int(self.offset[i + 1]),
                 int(self.emit_start[i]))
                for i in range(sl.start, sl.stop) if self.offset[i + 1] > self.offset[i]]
        for spec in (*_specs("series"), *_specs("market")):
            x, out = sub[spec.name], self.out[spec.name]
            for row, lo, hi, first in runs:
                out[lo:hi] = x[row, first:first + hi - lo]
        for name in CROSS_INPUTS:
            if name != "f_ret_1d":
                self.cross[name][:, sl] = sub[name].T
        self.fallback[sl] = (np.isnan(sub["shares"]) & valid(MAX_LOOKBACK)).sum(axis=1)

    def cross_sectional(self, sl: slice) -> None:
        """Every cross-stage feature of the dates in `sl`."""
        # the (symbols x dates) arrays are transposed views of date-major blocks: the
        # per-date kernels read each date's values contiguously
        sub = self.panel.columns(sl, {name: a[sl].T for name, a in self.cross.items()})
        valid = _masks(sub, transposed=True)
        sym, day = np.nonzero(valid(MAX_LOOKBACK))  # symbol-major: sequential writes
        pos = self.offset[sym] + (day + (sl.start or 0) - self.emit_start[sym])
        flat = day * len(self.panel.symbols) + sym  # index into the date-major block
        del sym, day
        for spec in _specs("cross"):
            value = np.ascontiguousarray(_evaluate(spec, sub, valid).T)
            self.out[spec.name][pos] = value.ravel()[flat]

    def frame(self) -> pl.DataFrame:
        rows = self.panel.shape[0]
        sym = np.repeat(np.arange(rows), np.diff(self.offset))
        day = np.arange(self.offset[-1]) - self.offset[sym] + self.emit_start[sym]
        columns = [pl.Series("date", self.panel.dates, dtype=pl.Date).gather(day),
                   pl.Series("symbol", self.panel.symbols, dtype=pl.String).gather(sym)]
        del sym, day
        columns += [_nullable(name, self.out.pop(name)) for name in FEATURE_NAMES]
        return pl.DataFrame(columns)


_RET = next(s for s in REGISTRY if s.name == "f_ret_1d")


def compute_panel(
    prices: pl.DataFrame,
    *,
    sectors: Mapping[str, str] | pl.DataFrame | None,
    fundamentals: pl.DataFrame | None = None,
    actions: pl.DataFrame | None = None,
    universe: Sequence[str] | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: Progress | None = None,
    workers: int | None = None,
    block_cells: int = BLOCK_CELLS,
) -> FeatureFrame:
    """All 45 features for every (symbol, session) whose look-backs are full.

    prices: adjusted bars (store prices schema; an optional `dollar_volume` column overrides
    close x volume). sectors: symbol -> sector (None: Aurora's default map). fundamentals:
    symbol, as_of and shares_outstanding and/or market_cap in USD (point in time from as_of).
    actions: corporate actions, used only to put shares_outstanding on the volume's basis.
    universe: restrict to these symbols (others are ignored and listed in the result).
    chunk_rows: ignored (kept for API compatibility).
    workers: processes for the block stages (None: `parallel.default_workers()`, the CPU
    count capped at 4; 1: in-process). The result does not depend on it, nor on
    block_cells (cells per block, a memory/speed knob; a panel of one block runs in-process).
    Returns columns date, symbol and the 45 features (Float64), sorted by (symbol, date).
    """
    del chunk_rows
    report = progress or (lambda stage, done, total: None)
    ignored: list[str] = []
    if universe is not None:
        wanted = set(universe)
        ignored = sorted(set(prices["symbol"].unique().to_list()) - wanted)
        prices = prices.filter(pl.col("symbol").is_in(list(wanted)))
    report("align", 0, 1)
    with _small_pages():
        panel, info = align_wide(prices, sectors=sectors, fundamentals=fundamentals,
                                 actions=actions)
        report("align", 1, 1)
        rows, cols = panel.shape
        by_symbol = _blocks(rows, block_cells // cols)
        by_date = _blocks(cols, block_cells // rows)
        n_workers = default_workers() if workers is None else max(1, workers)
        if max(len(by_symbol), len(by_date)) == 1:
            n_workers = 1  # nothing to split: no fork, no shared memory
        build = _Build(panel, shared=n_workers > 1)

        def run(stage: str, fn: Callable[[slice], None], blocks: list[slice],
                processes: int) -> None:
            report(stage, 0, len(blocks))
            run_blocks(lambda i: fn(blocks[i]), len(blocks), processes,
                       lambda done: report(stage, done, len(blocks)))

        run("returns", build.returns, by_symbol, 1)  # ~1% of the work: not worth a fork
        build.mkt[:] = market_return(build.cross["f_ret_1d"])
        run("series", build.series, by_symbol, n_workers)
        panel.arrays.clear()  # the inputs: no later stage reads them
        run("cross", build.cross_sectional, by_date, n_workers)
        report("emit", 0, 1)
        features = build.frame()
        report("emit", 1, 1)
    nonzero = np.flatnonzero(build.fallback)
    return FeatureFrame(
        features=features,
        info=info,
        turnover_fallback={panel.symbols[i]: int(build.fallback[i]) for i in nonzero},
        ignored_symbols=ignored,
    )


def compute_features(
    prices: pl.DataFrame,
    *,
    sectors: Mapping[str, str] | pl.DataFrame | None,
    fundamentals: pl.DataFrame | None = None,
    actions: pl.DataFrame | None = None,
    universe: Sequence[str] | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    workers: int | None = None,
    block_cells: int = BLOCK_CELLS,
) -> pl.DataFrame:
    """The feature frame of `compute_panel` alone (for notebooks and tests)."""
    return compute_panel(
        prices, sectors=sectors, fundamentals=fundamentals, actions=actions,
        universe=universe, chunk_rows=chunk_rows, workers=workers, block_cells=block_cells,
    ).features
