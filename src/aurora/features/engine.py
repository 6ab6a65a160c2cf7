"""Compute a set of feature expressions over a wide panel: the plan and its execution.

The algorithm (zipline's pipeline engine is the model):

1. **Graph.** The features' expressions form a DAG; equal subexpressions are one node
   (`Expr.key`), so shared work (the daily return, the market series) is computed once.
2. **Phases.** A per-symbol node (time series, element-wise) is in an even phase, computed
   on blocks of whole symbols; a per-date node (cross-sectional, market) or a `custom` one
   in an odd phase, on blocks of whole dates (custom: the whole panel). A node's phase is
   the first of its direction not before any input's, so phases alternate only as often as
   the expressions do (the 45 need three: series, cross, series on the market).
3. **Topological order and freeing.** A block evaluates its phase's nodes in topological
   order and drops each array when its last consumer in the block has read it. A node read
   by a later phase (and a field) is kept whole (symbols x sessions) until the last phase
   that reads it is done; memory is bounded by the block size plus those arrays.
4. **Masking.** Every node's value is missing outside its symbol's span, where fewer than
   its derived look-back sessions precede t, and where it is not finite, so no window reads
   a warm-up value and no infinity travels. A node missing wherever an input is and finite
   where they are (`Expr.keeps_mask`: sums, comparisons, `Abs`, ...) skips the pass.
5. **Emission.** A feature's cells (each symbol's span with at least `max look-back` prior
   sessions) are written straight into its long output column by the block computing it.
6. **Windows** (`windowed=True`: an incremental build's tail, the lookahead gate's): each
   node is computed only over the columns its readers need (`_starts`), and the symbols are
   cut into about a block per worker thread (most nodes are narrow). Running sums start later, so
   values may differ in their last bits; a full build computes every node over every
   column, so a cell never depends on how many sessions follow it, except that a
   cross-sectional or market node (which reads its date alone) starts at the first date a
   reader needs.

A phase's blocks are independent and run on worker threads (`parallel.map_blocks`). Every
kernel is independent across its block's other axis, so how the panel is cut (`block_cells`,
the thread count) changes no bit. Nothing here touches process-wide state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from aurora.features.buffers import blank
from aurora.features.expr import Context, Expr, Field, _Unary
from aurora.features.parallel import map_blocks
from aurora.features.wide import WidePanel

# cells of a node's value in a block: about ten live arrays of two threads fit a 32 MB L3
BLOCK_CELLS = 100_000
_PER_DATE = frozenset({"cross", "market", "custom"})


@dataclass
class Plan:
    """The graph of named expressions: unique nodes in topological order, each with its
    phase, the phases that read it, and the features it is."""

    roots: dict[str, Expr]
    order: list[Expr] = field(default_factory=list)
    phase: dict[tuple, int] = field(default_factory=dict)
    readers: dict[tuple, list[Expr]] = field(default_factory=dict)
    names: dict[tuple, list[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, roots: Mapping[str, Expr]) -> Plan:
        plan = cls(dict(roots))
        for name, expr in roots.items():
            for node in expr.walk():  # inputs before their readers
                if node.key not in plan.phase:
                    for i in node.inputs:
                        plan.readers.setdefault(i.key, []).append(node)
                    plan.order.append(node)
                    plan.phase[node.key] = _phase(node, plan.phase)
            plan.names.setdefault(expr.key, []).append(name)
        return plan

    def stages(self) -> dict[int, list[Expr]]:
        """The computed nodes of each phase, in topological order, by increasing phase."""
        nodes: dict[int, list[Expr]] = {}
        for n in (n for n in self.order if _computed(n)):
            nodes.setdefault(self.phase[n.key], []).append(n)
        return dict(sorted(nodes.items()))

    def last_phase(self, key: tuple) -> int:
        """The last phase that reads the node `key` (readers are never in earlier ones)."""
        return max((self.phase[r.key] for r in self.readers.get(key, ())), default=-1)


def _computed(node: Expr) -> bool:
    return node.kind not in ("field", "const")


def _phase(node: Expr, known: Mapping[tuple, int]) -> int:
    if not _computed(node):
        return 0
    base = max((known[i.key] for i in node.inputs), default=0)
    return base + int((base % 2 == 0) == (node.kind in _PER_DATE))


@dataclass
class Emission:
    """Where each symbol's emitted cells go in the long output: sessions first[i] .. end[i]
    at offset[i] .. offset[i + 1] - 1."""

    first: np.ndarray
    offset: np.ndarray

    @classmethod
    def of(cls, panel: WidePanel, lookback: int, since: int = 0) -> Emission:
        first = np.maximum(panel.start + lookback, since)
        counts = np.maximum(panel.end - first + 1, 0)
        return cls(first, np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))

    @property
    def rows(self) -> int:
        return int(self.offset[-1])


def evaluate(
    roots: Mapping[str, Expr],
    panel: WidePanel,
    emission: Emission,
    *,
    member: np.ndarray | None = None,
    workers: int = 1,
    block_cells: int = BLOCK_CELLS,
    windowed: bool = False,
    report: Callable[[str, int, int], None] = lambda stage, done, total: None,
) -> dict[str, np.ndarray]:
    """The long output column of every root (named feature), over `emission`'s cells.

    `panel` holds the fields (`open` ... `dollar_volume`, `shares_outstanding`) and is the
    evaluation's own: a field's array is dropped from it when the last phase that reads the
    field ends, as a kept node's is. `member` (symbols x sessions, bool) limits per-date
    operators to members; `windowed`: module docstring, 6. A field the panel lacks is
    refused before any block runs, and a node that fails raises its error, each naming the
    feature(s) concerned."""
    if constant := [name for name, e in roots.items() if e.kind == "const"]:
        raise ValueError(f"{', '.join(constant)}: a constant is not a feature")
    plan = Plan.of({name: _Emitted(e) if e.kind == "field" else e
                    for name, e in roots.items()})
    out = {name: blank((emission.rows,)) for name in roots}
    rows, cols = panel.shape
    # nodes read by later phases, whole; date-major if read per date (a date block is a slab)
    whole: dict[tuple, np.ndarray] = {}
    starts = _starts(plan, int(emission.first.min(initial=cols)), windowed)
    fields = {n.key: n.name for n in plan.order if isinstance(n, Field)}
    if absent := [n for n in dict.fromkeys(fields.values()) if n not in panel.arrays]:
        users = [root for root, e in roots.items() if Field(absent[0]) in e.walk()]
        raise ValueError(f"{', '.join(users)}: uses {absent[0]}, which these prices do not have")
    for phase, nodes in plan.stages().items():
        for n in (n for n in nodes if plan.last_phase(n.key) > phase):  # kept whole
            per_date = any(r.kind in _PER_DATE for r in plan.readers[n.key])
            whole[n.key] = blank((cols, rows)).T if per_date else blank((rows, cols))
        run = _Blocks(plan, nodes, panel, whole, out, emission, member, starts,
                      by_dates=phase % 2 == 1)
        lo = min(starts[n.key] for n in nodes)
        width = max(1, sum(cols - starts[n.key] for n in nodes) // len(nodes))  # windowed: narrow
        blocks = (_blocks(0, rows, min(block_cells // width, -(-rows // max(1, workers))))
                  if phase % 2 == 0 else [slice(lo, cols)] if any(n.kind == "custom" for n in nodes)
                  else _blocks(lo, cols, block_cells // max(rows, 1)))
        stage = f"phase {phase}"
        report(stage, 0, len(blocks))
        map_blocks(run, blocks, workers,
                   lambda done, stage=stage, n=len(blocks): report(stage, done, n))
        for key in [k for k in whole if plan.last_phase(k) <= phase]:
            del whole[key]
        for key in [k for k in fields if plan.last_phase(k) <= phase]:
            panel.arrays.pop(fields.pop(key), None)
    return out


class _Emitted(_Unary):
    """A feature that is a field itself (`f_x = close`): a copy of the field, so that it is
    masked and emitted as every computed node is (a field is never computed)."""

    kernel = staticmethod(lambda x: np.array(x, dtype=np.float64))


def _own(result: np.ndarray, args: Sequence[np.ndarray]) -> np.ndarray:
    """`result` as a float64 array this node may mask in place: copied only when it is
    read-only (a broadcast), not an array, or shares memory with an input."""
    value = np.asarray(result, dtype=np.float64)
    shared = any(np.may_share_memory(value, a) for a in args if isinstance(a, np.ndarray))
    copy = value.ndim < 2 or not value.flags.writeable or shared
    return value.copy(order="K") if copy else value


def _blocks(lo: int, hi: int, size: int) -> list[slice]:
    return [slice(i, min(hi, i + max(1, size))) for i in range(lo, hi, max(1, size))]


def _starts(plan: Plan, first: int, windowed: bool = True) -> dict[tuple, int]:
    """The first column each node is computed from (module docstring, 6): every root is
    needed from `first`, an input from the earliest start of its readers, and a node starts
    `window` columns before it is needed. Not `windowed`, only the cross-sectional and
    market nodes (a value that reads its date alone) start there; the others at column 0."""
    needed: dict[tuple, int] = {}
    starts: dict[tuple, int] = {}
    for node in reversed(plan.order):  # readers before their inputs
        late = windowed or node.kind in ("cross", "market")
        starts[node.key] = max(0, needed.get(node.key, first) - node.window) if late else 0
        for i in node.inputs:
            needed[i.key] = min(needed.get(i.key, starts[node.key]), starts[node.key])
    return starts


class _Blocks:
    """Evaluates one phase's nodes on a block: whole symbols (`by_dates` False) or whole
    dates. A block spans panel columns c0 .. c1 - 1; a node's value in it covers its
    columns from max(c0, its start) and is kept with that offset."""

    def __init__(self, plan: Plan, nodes: Sequence[Expr], panel: WidePanel,
                 whole: dict[tuple, np.ndarray], out: dict[str, np.ndarray],
                 emission: Emission, member: np.ndarray | None, starts: Mapping[tuple, int],
                 *, by_dates: bool) -> None:
        self.plan, self.nodes, self.panel, self.starts = plan, nodes, panel, starts
        self.whole, self.out, self.emission, self.member = whole, out, emission, member
        self.by_dates = by_dates
        inside = {n.key for n in nodes}
        self.uses = {n.key: sum(r.key in inside for r in plan.readers.get(n.key, ()))
                     for n in plan.order}

    def __call__(self, sl: slice) -> None:
        cut = (slice(None), sl) if self.by_dates else (sl, slice(0, len(self.panel.dates)))
        c0, c1 = cut[1].start, cut[1].stop
        sub = self.panel.block(*cut)
        ctx = Context(self.panel.sector_codes[cut[0]],
                      None if self.member is None else self.member[cut])
        cells = self.cells(sl, sub)
        values: dict[tuple, tuple[np.ndarray, int]] = {}
        left = dict(self.uses)
        for node in self.nodes:
            at = max(c0, self.starts[node.key])
            if at < c1:  # else needed only after this block
                self.evaluate(node, at, cut, sub, ctx, cells, values)
            for i in node.inputs:
                left[i.key] -= 1
                if left[i.key] == 0:
                    values.pop(i.key, None)

    def evaluate(self, node: Expr, at: int, cut: tuple[slice, slice], sub: WidePanel,
                 ctx: Context, cells: _Cells, values: dict[tuple, tuple[np.ndarray, int]]
                 ) -> None:
        """`node` over the block's columns from `at`: computed, masked, emitted, kept."""
        c0, c1 = cut[1].start, cut[1].stop
        args = [self.read(i, cut, sub, values, at) for i in node.inputs]
        narrow = ctx if at == c0 or ctx.member is None else Context(
            ctx.sector_codes, ctx.member[:, at - c0:])
        try:
            # floating-point warnings are expected: non-finite values are masked below
            with np.errstate(all="ignore"):
                value = _own(node.compute(args, narrow), args)
        except Exception as exc:
            names = ", ".join(self.plan.names.get(node.key, [])) or repr(node)
            raise type(exc)(f"{names}: {node!r}: {exc}") from exc
        if not (node.keeps_mask and all(i.kind != "custom" for i in node.inputs)):
            _mask(value, sub.start + node.lookback - (at - c0), sub.end - (at - c0))
        values[node.key] = (value, at)
        for name in self.plan.names.get(node.key, ()):
            cells.emit(value, at - c0, self.out[name])
        if node.key in self.whole:
            self.whole[node.key][cut[0], at:c1] = value

    def read(self, node: Expr, cut: tuple[slice, slice], sub: WidePanel,
             values: dict[tuple, tuple[np.ndarray, int]], at: int) -> np.ndarray:
        """`node`'s value from panel column `at` on."""
        if node.kind == "const":
            return node.compute([], Context(np.empty(0, dtype=np.int64)))
        value, offset = values.get(node.key) or (
            sub[node.name] if isinstance(node, Field) else self.whole[node.key][cut],
            cut[1].start)
        return value[:, at - offset:] if at > offset else value

    def cells(self, sl: slice, sub: WidePanel) -> _Cells:
        """Where the block's emitted cells go: a block of symbols writes one contiguous run
        of the output; in a block of dates, symbol i's cells go to consecutive output cells
        from offset[i]."""
        e = self.emission
        if not self.by_dates:
            return _Cells.of(e.first[sl], sub.end, len(self.panel.dates),
                             slice(e.offset[sl.start], e.offset[sl.stop]))
        first = e.first - sl.start
        cells = _Cells.of(first, sub.end, sl.stop - sl.start, slice(None))
        rows, at = np.divmod(cells.source, sl.stop - sl.start)
        cells.target = (e.offset[:-1] - first)[rows] + at
        return cells


def _mask(value: np.ndarray, first: np.ndarray, last: np.ndarray) -> None:
    """Set to NaN, in place, every infinite cell and every cell of row i (a symbol) outside
    columns first[i] .. last[i]. Only the bands of columns where some row starts late or
    ends early are compared cell by cell."""
    infinite = np.isinf(value)
    if infinite.any():
        value[infinite] = np.nan
    n = value.shape[1]
    cols = np.arange(n)
    band = min(max(int(first.max(initial=0)), 0), n)
    if band:
        np.copyto(value[:, :band], np.nan, where=cols[:band] < first[:, None])
    tail = min(max(int(last.min(initial=n)) + 1, 0), n)
    if tail < n:
        np.copyto(value[:, tail:], np.nan, where=cols[tail:] > last[:, None])


@dataclass
class _Cells:
    """Where a block's emitted cells are (`source`: flat index in C order, symbols x
    sessions; `source_t`: in a date-major value's transpose) and go (`target`: output)."""

    source: np.ndarray
    source_t: np.ndarray
    target: np.ndarray | slice
    cols: int

    @classmethod
    def of(cls, first: np.ndarray, last: np.ndarray, cols: int,
           target: np.ndarray | slice) -> _Cells:
        # only the columns some row emits are compared (one column on a one-session tail)
        lo = max(int(first.min(initial=cols)), 0)
        t = np.arange(lo, max(min(int(last.max(initial=-1)) + 1, cols), lo))
        inside = (t >= first[:, None]) & (t <= last[:, None])
        rows, at = np.nonzero(inside)
        at += lo
        return cls(rows * cols + at, at * len(first) + rows, target, cols)

    def emit(self, value: np.ndarray, skip: int, column: np.ndarray) -> None:
        """column[target] = the block's emitted cells of `value` (symbols x the block's
        sessions from its `skip`-th, C order or the transpose of a date-major array)."""
        if skip:  # a windowed value: few cells
            column[self.target] = value[self.source // self.cols, self.source % self.cols - skip]
        elif value.flags.f_contiguous and not value.flags.c_contiguous:  # date-major
            column[self.target] = np.take(value.T, self.source_t)
        elif isinstance(self.target, slice):  # straight into the column, no temporary
            np.take(value, self.source, out=column[self.target], mode="clip")
        else:
            column[self.target] = np.take(value, self.source)
