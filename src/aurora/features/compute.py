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
the output columns (`kernels.emit_rows`, `kernels.emit_columns`). Temporaries stay a few MB
and are reused by the allocator; the large arrays are mapped ahead on a background thread
(`memory`). With `workers` > 1 the blocks of each stage run on worker threads
(`parallel.run_blocks`; the kernels release the GIL); every cell is computed by the same code
on the same block, so the result equals the single-threaded one bit for bit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from aurora.calendar import sessions
from aurora.errors import AuroraError
from aurora.features import kernels, memory
from aurora.features.memory import Prefault
from aurora.features.panel import PanelInfo
from aurora.features.parallel import default_workers, run_blocks
from aurora.features.registry import CROSS_INPUTS, FEATURE_NAMES, MAX_LOOKBACK, REGISTRY
from aurora.features.residual import HELPERS, market_return
from aurora.features.spec import FeatureSpec
from aurora.features.wide import WIDE_PRICE_ARRAYS, WidePanel, align_wide, sorted_runs
from aurora.membership import Membership
from aurora.progress import Progress, no_progress

BLOCK_CELLS = 300_000
RECYCLED_INPUTS = len(WIDE_PRICE_ARRAYS) + 1  # the wide price arrays and shares
PREFAULT_MIN_BYTES = 256 << 20  # below this, mapping pages in the background is not worth a thread


@dataclass
class FeatureFrame:
    """The emitted features plus what the computation learned about its inputs."""

    features: pl.DataFrame
    info: PanelInfo
    turnover_fallback: dict[str, int]
    ignored_symbols: list[str]
    outside_membership: int = 0  # emitted rows left out: the symbol was not a member then


def _raw(spec: FeatureSpec, panel: WidePanel) -> np.ndarray:
    """spec.fn on the panel as float64, unmasked (0/0 and x/0 give NaN and inf silently)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.asarray(spec.fn(panel), dtype=np.float64)


def _evaluate(spec: FeatureSpec, panel: WidePanel, date_major: bool = False) -> np.ndarray:
    """spec.fn on the panel, masked: NaN outside the span, inside the look-back, non-finite.
    date_major: the panel's arrays are transposed views of date-major blocks (the cross
    stage), and so is the result. The result is a fresh array (masked in place)."""
    value = _raw(spec, panel)
    if not value.flags.writeable or any(
            np.may_share_memory(value, a) for a in panel.arrays.values()):
        value = value.copy(order="K")  # fn returned (a view of) an input
    first = panel.start + spec.lookback
    if date_major:
        kernels.mask_cells(value.T, first, panel.end, True)
    else:
        kernels.mask_cells(value, first, panel.end, False)
    return value


def _specs(stage: str) -> list[FeatureSpec]:
    return [s for s in REGISTRY if s.stage == stage]


def _blocks(n: int, size: int, start: int = 0) -> list[slice]:
    """Consecutive slices of at most `size` covering start .. n - 1."""
    size = max(1, size)
    return [slice(i, min(n, i + size)) for i in range(start, n, size)]


def _nullable(name: str, values: np.ndarray, bitmap: np.ndarray, missing: int) -> pl.Series:
    """A Float64 series over `values` (no copy) with the NaNs null (bitmap, missing: from
    `kernels.validity_bitmap`)."""
    array = pa.Array.from_buffers(
        pa.float64(), len(values),
        [pa.py_buffer(bitmap) if missing else None, pa.py_buffer(values)],
        null_count=missing)
    series = pl.from_arrow(array)
    assert isinstance(series, pl.Series)
    return series.alias(name)


_INLINE_VIEW_BYTES = 12  # an Arrow string view holds a string of up to 12 bytes inline


def _symbol_column(symbols: list[str], row: np.ndarray, views: np.ndarray) -> pl.Series:
    """The long `symbol` column: symbols[row[k]] for every output row k.

    Written as Arrow string views straight into `views` (total x 16 bytes, mapped ahead),
    which polars adopts without a copy: its own gather would write the same 16 bytes per row
    into fresh memory. Symbols longer than 12 bytes do not fit a view inline; then polars
    gathers."""
    encoded = [s.encode() for s in symbols]
    if any(len(b) > _INLINE_VIEW_BYTES for b in encoded) or views.shape != (len(row), 16):
        return pl.Series("symbol", symbols, dtype=pl.String).gather(
            pl.Series(row, dtype=pl.UInt32))  # a polars index: much faster than numpy's
    table = np.zeros((len(encoded), 16), dtype=np.uint8)
    for i, b in enumerate(encoded):
        table[i, :4] = np.frombuffer(np.int32(len(b)).tobytes(), dtype=np.uint8)
        table[i, 4:4 + len(b)] = np.frombuffer(b, dtype=np.uint8)
    kernels.string_views(row, table.view(np.uint64), views.view(np.uint64))
    array = pa.Array.from_buffers(pa.string_view(), len(row), [None, pa.py_buffer(views)])
    series = pl.from_arrow(array)
    assert isinstance(series, pl.Series)
    return series.alias("symbol")


def _spans(prices: pl.DataFrame) -> pl.DataFrame:
    """symbol, first and last date of its bars. One pass over the run boundaries when the
    bars come sorted by (symbol, date), the store's order; else a group-by. (Only a plan:
    `_Build` uses the planned arrays only if their shapes are the real ones.)"""
    runs = sorted_runs(prices["symbol"])
    if runs is not None:
        values, lengths = runs
        date = prices["date"].cast(pl.Date)
        ends = np.cumsum(lengths)
        return pl.DataFrame({"symbol": values, "first": date.gather(ends - lengths),
                             "last": date.gather(ends - 1)})
    return prices.lazy().group_by("symbol").agg(
        pl.col("date").cast(pl.Date).min().alias("first"),
        pl.col("date").cast(pl.Date).max().alias("last")).collect()


def _planned_shape(prices: pl.DataFrame) -> tuple[int, int, int] | None:
    """(symbols, sessions, emitted rows) that `align_wide` and `_Build` will find, from a
    cheap pass over the bars; None when the input is too broken to say (align_wide then
    says what is wrong)."""
    if prices.height == 0 or not {"symbol", "date"} <= set(prices.columns):
        return None
    try:
        spans = _spans(prices)
        first, last = spans["first"].min(), spans["last"].max()
        if not isinstance(first, dt.date) or not isinstance(last, dt.date):
            return None
        days = pl.Series(sessions(first, last), dtype=pl.Date).cast(pl.Int32).to_numpy()
    except (pl.exceptions.PolarsError, AuroraError, ValueError, TypeError):
        return None
    start = np.searchsorted(days, spans["first"].cast(pl.Int32).to_numpy())
    end = np.searchsorted(days, spans["last"].cast(pl.Int32).to_numpy())
    return spans.height, len(days), int(np.maximum(end - start - MAX_LOOKBACK + 1, 0).sum())


def _prefault(prices: pl.DataFrame) -> Prefault | None:
    """Start mapping the build's large arrays in the background (see `memory.Prefault`),
    when they are large enough for it to matter."""
    shape = _planned_shape(prices)
    if shape is None:
        return None
    plan = [entry for entry in _array_plan(*shape) if entry[0] not in _RECYCLED]
    if sum(8 * int(np.prod(s)) for _, s, _ in plan) < PREFAULT_MIN_BYTES:
        return None
    return Prefault(plan)


def _array_plan(rows: int, cols: int, total: int) -> list[tuple[str, tuple[int, ...], type]]:
    """The large arrays of a build, in the order the stages first write them: the wide
    price arrays of `align_wide` ("panel:NAME", symbols x sessions), the date-major daily
    returns ("cross:f_ret_1d", sessions x symbols: the market return and the series stage
    read them), the output columns ("out:NAME", one cell per emitted row) of the series,
    market and cross stages, then the index, date and validity arrays of the frame
    ("frame:NAME")."""
    plan: list[tuple[str, tuple[int, ...], type]] = [
        (f"panel:{name}", (rows, cols), np.float64) for name in WIDE_PRICE_ARRAYS]
    plan += [("cross:f_ret_1d", (cols, rows), np.float64)]
    for stage in ("series", "market", "cross"):
        plan += [(f"out:{s.name}", (total,), np.float64) for s in _specs(stage)]
    plan += [("frame:row", (total,), np.uint32), ("frame:column", (total,), np.uint32),
             ("frame:date", (total,), np.int32), ("frame:symbol_views", (total, 16), np.uint8),
             ("frame:bitmaps", (len(FEATURE_NAMES), (total + 7) // 8), np.uint8)]
    return plan


def _take(prefault: Prefault | None, key: str, shape: tuple[int, ...],
          dtype: type = np.float64) -> np.ndarray:
    """Array `key` from the prefault when planned with this shape, else a new one."""
    return (prefault.take(key, shape, dtype) if prefault is not None
            else np.empty(shape, dtype=dtype))


class _Build:
    """The output columns and the cross-stage inputs of one panel, filled block by block.

    The large arrays are handed out stage by stage (`allocate`): from `prefault` when it was
    started for this panel's shapes (`_prefault`), else freshly allocated.
    """

    def __init__(self, panel: WidePanel, prefault: Prefault | None) -> None:
        self.panel = panel
        rows, cols = panel.shape
        self.emit_start = panel.start + MAX_LOOKBACK
        counts = np.maximum(panel.end - self.emit_start + 1, 0)
        self.offset = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        plan = _array_plan(rows, cols, int(self.offset[-1]))
        self.shapes = {key: shape for key, shape, _ in plan if not key.startswith("panel:")}
        self.dtypes = {key: dtype for key, _, dtype in plan}
        self.frame_arrays: dict[str, np.ndarray] = {}
        self.prefault = prefault
        self.out: dict[str, np.ndarray] = {}
        self.cross: dict[str, np.ndarray] = {}
        # the other cross inputs are read back from their output columns, plus their cells
        # before the first emitted one (warm-up cells: still part of other symbols'
        # cross-sections), kept here
        warm = np.maximum(np.minimum(self.emit_start, panel.end + 1) - panel.start, 0)
        self.warm_offset = np.concatenate([[0], np.cumsum(warm)]).astype(np.int64)
        self.warm = {name: np.empty(int(self.warm_offset[-1]))
                     for name in CROSS_INPUTS if name != "f_ret_1d"}
        self.fallback = np.zeros(rows, dtype=np.int64)
        self.mkt = np.empty(cols)
        self.bitmaps: dict[int, tuple[np.ndarray, int]] = {}
        # dates x symbols: True where the symbol is a member (None: always)
        self.member_by_date: np.ndarray | None = None

    def market(self) -> None:
        """The per-date market return over the members' daily returns."""
        returns = self.cross["f_ret_1d"]
        if self.member_by_date is not None:
            returns = np.where(self.member_by_date, returns, np.nan)
        self.mkt[:] = market_return(returns)

    def allocate(self, keys: Sequence[str], reuse: Sequence[np.ndarray] = ()) -> None:
        """Make the arrays `keys` ("cross:", "out:" or "frame:NAME") available: call before the
        stage that writes them. Each comes from the prefault if planned there, else from
        `reuse` (arrays no longer read, large enough: their pages are mapped already, so
        a few output columns are views of the first cells of a spent input), else is new."""
        spare = [a.reshape(-1) for a in reuse]
        for key in keys:
            kind, name = key.split(":")
            shape = self.shapes[key]
            if key in _RECYCLED and spare and spare[-1].size >= shape[0]:
                array = spare.pop()[:shape[0]]
            else:
                array = _take(self.prefault, key, shape, self.dtypes[key])
            if kind == "frame":
                self.frame_arrays[key] = array
            else:
                (self.cross if kind == "cross" else self.out)[name] = array

    def returns(self, sl: slice) -> None:
        sub = self.panel.rows(sl, {})
        self.cross["f_ret_1d"][:, sl] = _evaluate(_RET, sub).T

    def series(self, sl: slice) -> None:
        """Every series and market feature of the symbols in `sl`."""
        ret = np.ascontiguousarray(self.cross["f_ret_1d"][:, sl].T)
        sub = self.panel.rows(sl, {"f_ret_1d": ret})
        sub.arrays["_mkt"] = np.broadcast_to(self.mkt, ret.shape)
        # each symbol's emitted cells are one contiguous run of its row and of the output
        first, offset = self.emit_start[sl], self.offset[sl.start:sl.stop + 1]
        for spec in (*_specs("series"), *HELPERS, *_specs("market")):
            if spec.name in _READ_BACK:  # masked on the whole grid: later specs read it
                if spec is not _RET:
                    sub.arrays[spec.name] = _evaluate(spec, sub)
                value = sub[spec.name]
            else:  # only its emitted cells matter, all past every look-back: no mask
                value = _raw(spec, sub)
            if spec.name in self.out:
                kernels.emit_rows(value, first, offset, self.out[spec.name])
        warm_offset = self.warm_offset[sl.start:sl.stop + 1]
        for name, warm in self.warm.items():
            kernels.emit_rows(sub[name], sub.start, warm_offset, warm)
        self.fallback[sl] = (np.isnan(sub["shares"]) & sub.valid(MAX_LOOKBACK)).sum(axis=1)

    def cross_sectional(self, sl: slice) -> None:
        """Every cross-stage feature of the dates in `sl`."""
        # the (symbols x dates) arrays are transposed views of date-major blocks: the
        # per-date kernels read each date's values contiguously
        panel, d0 = self.panel, sl.start or 0
        arrays = {"f_ret_1d": self.cross["f_ret_1d"][sl].T}
        for name, warm in self.warm.items():
            block = np.empty((sl.stop - d0, len(panel.symbols)))
            kernels.gather_columns(self.out[name], warm, d0, panel.start, self.emit_start,
                                   panel.end, self.offset, self.warm_offset, block)
            arrays[name] = block.T
        if self.member_by_date is not None:  # only members are in a cross-section
            member = self.member_by_date[sl]
            arrays = {name: np.where(member, a.T, np.nan).T for name, a in arrays.items()}
        sub = panel.columns(sl, arrays)
        for spec in _specs("cross"):
            value = np.ascontiguousarray(_evaluate(spec, sub, date_major=True).T)
            kernels.emit_columns(value, d0, self.emit_start, self.offset,
                                 self.out[spec.name])

    def validity(self, i: int) -> None:
        """The Arrow validity bitmap and null count of output column FEATURE_NAMES[i]."""
        values = self.out[FEATURE_NAMES[i]]
        bitmap = self.frame_arrays["frame:bitmaps"][i]
        self.bitmaps[i] = (bitmap, kernels.validity_bitmap(values, bitmap))

    def frame(self) -> tuple[pl.DataFrame, int]:
        """The long output frame over the filled columns (no copy; call `allocate` for the
        "frame:" arrays and `validity` for every column first), without the rows of
        non-members, and how many rows that left out."""
        row, column = self.frame_arrays.pop("frame:row"), self.frame_arrays.pop("frame:column")
        kernels.long_index(self.offset, self.emit_start, row, column)
        keep = None if self.member_by_date is None else self.member_by_date[column, row]
        day = self.panel.dates.astype("datetime64[D]").astype(np.int32)
        date = np.take(day, column, out=self.frame_arrays.pop("frame:date"))
        columns = [pl.Series("date", date, dtype=pl.Int32).cast(pl.Date),
                   _symbol_column(self.panel.symbols, row,
                                  self.frame_arrays.pop("frame:symbol_views"))]
        del row, column
        for i, name in enumerate(FEATURE_NAMES):
            bitmap, missing = self.bitmaps.pop(i)
            columns.append(_nullable(name, self.out.pop(name), bitmap, missing))
        frame = pl.DataFrame(columns)
        if keep is None or keep.all():
            return frame, 0
        return frame.filter(pl.Series(keep)), int((~keep).sum())


_RET = next(s for s in REGISTRY if s.name == "f_ret_1d")
# The series/market arrays other specs (or the cross stage) read: computed on the whole grid
# and masked. Any other series feature is emitted straight from its function's result and
# not kept, so a spec reading it fails loudly (KeyError) instead of seeing unmasked cells.
# The last cross-stage outputs reuse the memory of the spent wide inputs (`_Build.allocate`),
# so the prefault does not map them.
_RECYCLED = frozenset(f"out:{s.name}" for s in _specs("cross")[-RECYCLED_INPUTS:])
_READ_BACK = frozenset({"f_ret_1d", *CROSS_INPUTS, *(h.name for h in HELPERS)})


def compute_panel(
    prices: pl.DataFrame,
    *,
    sectors: Mapping[str, str] | pl.DataFrame | None,
    fundamentals: pl.DataFrame | None = None,
    actions: pl.DataFrame | None = None,
    universe: Sequence[str] | None = None,
    membership: Membership | None = None,
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
    membership: a dated universe's intervals (None: every symbol always a member). A
    symbol's series features use all its bars; the market return and the cross-sectional
    features on a date use the members of that date only, and only members' rows are
    emitted (`outside_membership` counts the others).
    workers: threads for the block stages (None: `parallel.default_workers()`, the CPU
    count capped at 4; 1: the calling thread only). The result does not depend on it, nor
    on block_cells (cells per block, a memory/speed knob).
    Returns columns date, symbol and the 45 features (Float64), sorted by (symbol, date).
    """
    report = progress or no_progress
    ignored: list[str] = []
    if universe is not None:
        wanted = set(universe)
        ignored = sorted(set(prices["symbol"].unique().to_list()) - wanted)
        prices = prices.filter(pl.col("symbol").is_in(list(wanted)))
    report("align", 0, 1)
    with memory.small_pages(), memory.retain_freed_memory():
        prefault = _prefault(prices)
        try:
            panel, info = align_wide(prices, sectors=sectors, fundamentals=fundamentals,
                                     actions=actions,
                                     empty=lambda name, shape: _take(prefault, f"panel:{name}",
                                                                     shape))
        except BaseException:
            if prefault is not None:
                prefault.close()
            raise
        report("align", 1, 1)
        rows, cols = panel.shape
        by_symbol = _blocks(rows, block_cells // cols)
        # no cross-sectional value before the first emitted session is ever emitted
        first_emitted = int((panel.start + MAX_LOOKBACK).min(initial=cols))
        by_date = _blocks(cols, block_cells // rows, start=first_emitted)
        n_workers = default_workers() if workers is None else max(1, workers)
        build = _Build(panel, prefault)
        if membership is not None:
            build.member_by_date = np.ascontiguousarray(
                membership.mask(panel.symbols, panel.dates).T)

        def run(stage: str, fn: Callable[[int], None], n: int) -> None:
            report(stage, 0, n)
            run_blocks(fn, n, n_workers, lambda done: report(stage, done, n))

        build.allocate([key for key in build.shapes if key.startswith("cross:")])
        run("returns", lambda i: build.returns(by_symbol[i]), len(by_symbol))
        build.market()
        build.allocate([f"out:{s.name}" for s in (*_specs("series"), *_specs("market"))])
        run("series", lambda i: build.series(by_symbol[i]), len(by_symbol))
        spent = list(panel.arrays.values())  # the inputs: no later stage reads them
        panel.arrays.clear()
        build.allocate([f"out:{s.name}" for s in _specs("cross")], reuse=spent)
        del spent
        run("cross", lambda i: build.cross_sectional(by_date[i]), len(by_date))
        build.cross.clear()
        build.allocate([key for key in build.shapes if key.startswith("frame:")])
        report("emit", 0, len(FEATURE_NAMES) + 1)
        run_blocks(build.validity, len(FEATURE_NAMES), n_workers,
                   lambda done: report("emit", done, len(FEATURE_NAMES) + 1))
        features, outside = build.frame()
        report("emit", len(FEATURE_NAMES) + 1, len(FEATURE_NAMES) + 1)
    nonzero = np.flatnonzero(build.fallback)
    return FeatureFrame(
        features=features,
        info=info,
        turnover_fallback={panel.symbols[i]: int(build.fallback[i]) for i in nonzero},
        ignored_symbols=ignored,
        outside_membership=outside,
    )


def compute_features(
    prices: pl.DataFrame,
    *,
    sectors: Mapping[str, str] | pl.DataFrame | None,
    fundamentals: pl.DataFrame | None = None,
    actions: pl.DataFrame | None = None,
    universe: Sequence[str] | None = None,
    membership: Membership | None = None,
    workers: int | None = None,
    block_cells: int = BLOCK_CELLS,
) -> pl.DataFrame:
    """The feature frame of `compute_panel` alone (for notebooks and tests)."""
    return compute_panel(
        prices, sectors=sectors, fundamentals=fundamentals, actions=actions,
        universe=universe, membership=membership, workers=workers, block_cells=block_cells,
    ).features
