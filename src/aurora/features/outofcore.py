"""A full build out of core: no process holds more than a year of the history.

The algorithm:
1. scan (this process): the raw bars of the version (`aurora.store.bars`: year parts, each
   sorted by (symbol, date)), are read a batch of whole symbols at a time, merged from
   every part's stream (every column), to learn
   what every block
   needs from the whole history: each symbol's first and last bar (`spans`), the dates
   with bars, the point-in-time adjustment (`adjustments.point_in_time_events`: a symbol's
   events need only its own bars and its spin-offs' targets on their ex-dates) and the
   shares outstanding of the fundamentals on the adjusted volume basis
   (`panel.shares_table`, a per-symbol as-of join). Each batch's bars are written again
   by year to the build's `Exchange` (`bars/year=YYYY/batch-NNNNN.parquet`), which the
   tasks read.
2. years (tasks on a runner: this process one after another, or a Dask cluster): one per
   calendar year. A task reads the raw bars of its year and of the look-back before it
   from the exchange (only those years' files, so what a task reads does not grow with
   the history), adjusts them with the cumulative factors (the values a one-piece build
   adjusts to, bit for bit), computes the year in periods of `block_months`
   (`blocks.compute_block`), writes the year's features part to the exchange and returns
   its `FrameSummary`. So a worker must reach the exchange: the store's filesystem by
   default, or object storage (`aurora.features.exchange`).
3. gates and publication (this process): the gates judge the combined summaries, the
   lookahead proof recomputes the tail, and the parts move into the version's
   transaction (`datasets.place_parts`); on any failure the exchange is removed and
   `latest` is untouched.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from aurora.adjustments import apply_point_in_time, cumulate, point_in_time_events
from aurora.atomic import private_dir
from aurora.calendar import sessions
from aurora.cluster import LocalRunner, Runner
from aurora.errors import DataValidationError
from aurora.features.blocks import (
    TASKS,
    Block,
    Period,
    Shared,
    block_periods,
    compute_block,
    threads_for,
    user_modules,
    with_absent,
)
from aurora.features.exchange import Exchange
from aurora.features.expr import Expr
from aurora.features.gatestats import FrameSummary, summarize
from aurora.features.panel import PanelInfo, shares_table
from aurora.features.registry import feature_set
from aurora.intraday.daily import daily_fields, with_intraday
from aurora.membership import Membership
from aurora.progress import Progress
from aurora.schemas import SPIN_OFF_TYPES, sorted_by_key

BATCH_ROWS = 1_000_000  # raw bars per read of the scan (four columns: about 40 MB)
SCRATCH = "scratch"  # under the store's state directory


@dataclass(frozen=True)
class History:
    """What the scan learned about the whole history (step 1 of the module docstring)."""

    spans: pl.DataFrame  # symbol, first, last, rows
    days: pl.Series  # the dates with bars, sorted
    exchange: Exchange  # holds the raw bars by year
    cumulative: pl.DataFrame  # `adjustments.cumulate` of every usable action
    shares: pl.DataFrame | None
    shares_source: str
    ignored: list[str]  # symbols with bars outside the universe

    @property
    def grid_counts(self) -> tuple[int, int]:
        """(sessions from each symbol's first bar to its last, summed; of those, the
        sessions without a bar): `PanelInfo.grid_rows` and `missing_bars`."""
        if self.spans.height == 0:
            return 0, 0
        days = np.array(sessions(self.spans["first"].min(), self.spans["last"].max()),
                        dtype="datetime64[D]")
        lo = np.searchsorted(days, self.spans["first"].to_numpy().astype("datetime64[D]"))
        hi = np.searchsorted(days, self.spans["last"].to_numpy().astype("datetime64[D]"))
        grid = int((hi - lo + 1).sum())
        return grid, grid - int(self.spans["rows"].sum())


def scan_history(prices: Sequence[Path], exchange: Exchange, actions: pl.DataFrame | None,
                 fundamentals: pl.DataFrame | None,
                 universe: Sequence[str] | None = None,
                 batch_rows: int = BATCH_ROWS,
                 progress: Callable[[int, int], None] | None = None) -> History:
    """Step 1 of the module docstring over the raw bars in `prices` (Parquet files each
    sorted by symbol, then date: a version's year parts, or one file), writing the bars of
    `universe` by year under `exchange`; `progress(bars read, bars in the files)` after
    each batch. DataValidationError naming a file that is not sorted."""
    wanted = None if universe is None else set(universe)
    targets = _spin_off_targets(prices, actions)
    spans, events, shares, days = [], [], [], set()
    ignored: set[str] = set()
    info = PanelInfo()
    # every snapshot checked and the source named once, as the whole history's table does
    shares_table(fundamentals, _NO_BARS, actions, info)
    total, read = sum(pq.ParquetFile(path).metadata.num_rows for path in prices), 0
    for number, chunk in enumerate(_whole_symbols(prices, batch_rows)):
        read += chunk.height
        if progress is not None:
            progress(read, total)
        if wanted is not None:
            ignored.update(set(chunk["symbol"].unique().to_list()) - wanted)
            chunk = chunk.filter(pl.col("symbol").is_in(list(wanted)))
            if chunk.height == 0:
                continue
        symbols = chunk.get_column("symbol").unique()
        spans.append(chunk.group_by("symbol").agg(pl.col("date").min().alias("first"),
                                                  pl.col("date").max().alias("last"),
                                                  pl.len().alias("rows")))
        days.update(chunk.get_column("date").unique().to_list())
        _exchange(chunk, exchange, number)
        bars = (chunk if targets is None else
                pl.concat([chunk.select(targets.columns), targets], how="vertical_relaxed"))
        found = point_in_time_events(bars, actions, symbols) if actions is not None else None
        if found is not None and found.height:
            events.append(found)
        if fundamentals is not None:
            adjusted = apply_point_in_time(chunk, cumulate(found) if found is not None
                                           else pl.DataFrame())
            mine = fundamentals.filter(pl.col("symbol").cast(pl.String).is_in(symbols.implode()))
            table = shares_table(mine, adjusted, actions, PanelInfo()) if mine.height else None
            if table is not None:
                shares.append(table)
    every = (pl.concat(events) if events
             else point_in_time_events(pl.DataFrame(), None))
    return History(
        spans=(pl.concat(spans).sort("symbol") if spans else
               pl.DataFrame(schema={"symbol": pl.String, "first": pl.Date, "last": pl.Date,
                                    "rows": pl.UInt32})),
        days=pl.Series("date", sorted(days), dtype=pl.Date), exchange=exchange,
        cumulative=cumulate(every),
        shares=pl.concat(shares).sort("as_of") if shares else None,
        shares_source=info.shares_source, ignored=sorted(ignored))


_NO_BARS = pl.DataFrame(schema={"symbol": pl.String, "date": pl.Date, "close": pl.Float64,
                                 "volume": pl.Float64})


def _exchange(bars: pl.DataFrame, exchange: Exchange, number: int) -> None:
    """Write `bars` (whole symbols) to `exchange`, one file per calendar year."""
    years = bars.get_column("date").dt.year()
    for year in years.unique().sort().to_list():
        exchange.write(bars.filter(years == year), f"{_bars(year)}/batch-{number:05d}.parquet")


def _bars(year: int) -> str:
    return f"bars/year={year:04d}"


def _intraday(year: int) -> str:
    return f"intraday/year={year:04d}"


def exchange_intraday(fields: pl.DataFrame, exchange: Exchange) -> None:
    """Write the intraday fields (`aurora.intraday.daily`, rows of any years) to
    `exchange`, one file per calendar year, for the tasks of a build with the intraday
    family (`read_adjusted(intraday=True)`)."""
    years = fields.get_column("date").dt.year()
    for year in years.unique().sort().to_list():
        exchange.write(fields.filter(years == year), f"{_intraday(year)}/fields.parquet")


def _whole_symbols(paths: Sequence[Path], batch_rows: int) -> Iterator[pl.DataFrame]:
    """The bars in `paths` (each sorted by symbol: a dataset's year parts, or one file), in
    frames sorted by (symbol, date) that hold every bar of their symbols, in symbol order.

    Each file is read as a stream of about `batch_rows / len(paths)` rows at a time; a
    frame takes, from every file, the symbols below the smallest last symbol read from a
    file not yet exhausted (that symbol may go on in the file's next rows).
    """
    streams = [_SortedStream(path, max(1, batch_rows // len(paths))) for path in paths]
    while True:
        for stream in streams:
            stream.fill()
        reading = [stream.last for stream in streams if stream.last is not None]
        bound = min(reading) if reading else None
        taken = [frame for stream in streams if (frame := stream.take_below(bound)).height]
        if taken:
            yield sorted_by_key(pl.concat(taken))
        elif bound is None:
            return
        else:  # one symbol fills the buffers: read on where it goes on
            for stream in streams:
                if stream.last == bound:
                    stream.read()


class _SortedStream:
    """The rows of one Parquet file sorted by symbol, read a slice at a time into a buffer
    (polars skips the row groups before the slice: no reader state is held between
    reads); `last` is the last symbol read while the file has rows left, else None."""

    def __init__(self, path: Path, batch_rows: int) -> None:
        self.path, self.batch_rows = path, batch_rows
        self.rows = pq.ParquetFile(path).metadata.num_rows
        self.offset = 0
        self.buffer: pl.DataFrame | None = None
        self.last: str | None = None
        self.done = False
        self.read()

    def read(self) -> None:
        """Append the file's next slice to the buffer (DataValidationError naming the file
        when its rows are not sorted by symbol)."""
        while self.offset < self.rows:
            frame = (pl.scan_parquet(self.path).slice(self.offset, self.batch_rows).collect()
                     .with_columns(pl.col("symbol").cast(pl.String),
                                   pl.col("date").cast(pl.Date)))
            self.offset += self.batch_rows
            if frame.height == 0:
                continue
            names = frame.get_column("symbol")
            if not names.is_sorted() or (self.last is not None and names[0] < self.last):
                raise DataValidationError(
                    f"{self.path}: bars are not sorted by symbol (an out-of-core build reads "
                    "them a symbol at a time); `aurora fetch` writes them sorted")
            self.buffer = frame if self.buffer is None else pl.concat([self.buffer, frame])
            self.last = names[-1]
            return
        self.done, self.last = True, None

    def fill(self) -> None:
        """Read until the buffer holds a batch of rows or the file is exhausted."""
        while not self.done and (self.buffer is None or self.buffer.height < self.batch_rows):
            self.read()

    def take_below(self, bound: str | None) -> pl.DataFrame:
        """Remove and return the buffered rows of symbols below `bound` (None: all)."""
        if self.buffer is None:
            return _NO_ROWS
        if bound is None:
            taken, self.buffer = self.buffer, None
            return taken
        below = self.buffer.get_column("symbol") < bound
        taken, self.buffer = self.buffer.filter(below), self.buffer.filter(~below)
        return taken


_NO_ROWS = pl.DataFrame()


def _spin_off_targets(paths: Sequence[Path],
                      actions: pl.DataFrame | None) -> pl.DataFrame | None:
    """The bars (date, symbol, close, volume) of spin-off targets on their ex-dates: what
    values a spin-off, whichever batch its parent is in."""
    if actions is None or "target_symbol" not in actions.columns:
        return None
    keys = (actions.filter(pl.col("action_type").is_in(SPIN_OFF_TYPES))
            .select(symbol=pl.col("target_symbol").cast(pl.String),
                    date=pl.col("ex_date").cast(pl.Date)).drop_nulls().unique())
    if keys.height == 0:
        return None
    return (pl.scan_parquet(list(paths)).select("date", "symbol", "close", "volume")
            .filter(pl.col("symbol").is_in(keys["symbol"].unique().implode())
                    & pl.col("date").is_in(keys["date"].unique().implode()))
            .join(keys.lazy(), on=["symbol", "date"], how="semi").collect())


def read_adjusted(exchange: Exchange, start: dt.date, end: dt.date,
                  cumulative: pl.DataFrame, intraday: bool = False) -> pl.DataFrame:
    """The raw bars `scan_history` wrote to `exchange` dated in [start, end], sorted by
    (symbol, date) and adjusted point in time with `cumulative`: the rows a block reads;
    with `intraday`, the intraday fields `exchange_intraday` wrote joined to them (null on
    days without). Only the files of the years of [start, end] are opened."""
    years = range(start.year, end.year + 1)
    names = exchange.files([_bars(year) for year in years])
    if not names:
        raise DataValidationError(f"{exchange.shown}: no bars between {start} and {end}")
    raw = exchange.read(names).filter(pl.col("date").is_between(start, end))
    adjusted = apply_point_in_time(sorted_by_key(raw), cumulative)
    if not intraday:
        return adjusted
    found = exchange.files([_intraday(year) for year in years])
    fields = (exchange.read(found).filter(pl.col("date").is_between(start, end)) if found
              else daily_fields(pl.DataFrame()))
    return with_intraday(adjusted, fields)


@dataclass(frozen=True)
class YearTask:
    """One year's periods (`block_periods`), the exchange they read and the part file the
    task writes."""

    year: int
    periods: Sequence[Period]
    exchange: Exchange
    part: str  # its name in the exchange


@dataclass
class YearResult:
    year: int
    rows: int
    summary: FrameSummary
    turnover_fallback: dict[str, int]
    unknown_sector: list[str]
    sector_source: str
    outside_membership: int


@dataclass(frozen=True)
class StoredShared(Shared):
    """`Shared` plus the cumulative adjustment factors the tasks adjust their bars with."""

    cumulative: pl.DataFrame = field(default_factory=pl.DataFrame)
    intraday: bool = False  # the exchange holds intraday fields to join (`read_adjusted`)


def compute_year(task: YearTask, shared: StoredShared) -> YearResult:
    """Step 2 of the module docstring for one year (a task: module-level, pickles)."""
    pieces = []
    for period in task.periods:
        rows = read_adjusted(task.exchange, period.start, period.after, shared.cumulative,
                             shared.intraday)
        block = Block(period.first, period.last, with_absent(rows, shared.spans, period))
        pieces.append(compute_block(block, shared))
    features = _in_key_order([p.features for p in pieces])
    task.exchange.write(features, task.part)
    fallback: dict[str, int] = {}
    for piece in pieces:
        for symbol, count in piece.turnover_fallback.items():
            fallback[symbol] = fallback.get(symbol, 0) + count
    return YearResult(task.year, features.height, summarize(features), fallback,
                      sorted({s for p in pieces for s in p.info.unknown_sector}),
                      pieces[0].info.sector_source,
                      sum(p.outside_membership for p in pieces))


def _in_key_order(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """The rows of `frames` (a year's pieces, each sorted by (symbol, date)) as one frame
    sorted by (symbol, date), built a column at a time: each piece's column is taken out of
    it (the pieces are emptied) and freed once gathered, so the year is held once, not
    twice."""
    if len(frames) == 1:
        return frames[0]
    keys = pl.concat([f.select("symbol", "date") for f in frames])
    order = keys.select(pl.struct("symbol", "date").arg_sort()).to_series()
    del keys
    names = frames[0].columns
    return pl.DataFrame([pl.concat([f.drop_in_place(name) for f in frames]).gather(order)
                         for name in names])


@dataclass
class OutOfCore:
    """What the years computed: their parts (year -> (name in the exchange, rows)) and
    results. `discard` removes the exchange and `local`, where `local_parts` put parts."""

    history: History
    parts: dict[int, tuple[str, int]]
    results: list[YearResult]
    local: Path

    def local_parts(self) -> dict[int, tuple[Path, int]]:
        """The parts as local files (fetched into `local` from a remote exchange)."""
        exchange = self.history.exchange
        if not exchange.remote:
            return {y: (Path(exchange.location) / name, rows)
                    for y, (name, rows) in self.parts.items()}
        folder = private_dir(self.local)
        return {y: (exchange.fetch(name, folder / name), rows)
                for y, (name, rows) in self.parts.items()}

    def discard(self) -> None:
        self.history.exchange.remove()
        shutil.rmtree(self.local, ignore_errors=True)

    def info(self) -> PanelInfo:
        grid, missing = self.history.grid_counts
        first = self.results[0] if self.results else None
        return PanelInfo(
            unknown_sector=sorted({s for r in self.results for s in r.unknown_sector}),
            sector_source=first.sector_source if first else "given",
            shares_source=self.history.shares_source, missing_bars=missing, grid_rows=grid)

    def turnover_fallback(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for result in self.results:
            for symbol, count in result.turnover_fallback.items():
                total[symbol] = total.get(symbol, 0) + count
        return total


def compute_out_of_core(
    history: History,
    local: Path,
    *,
    sectors: Mapping[str, str] | pl.DataFrame | None,
    fundamentals: pl.DataFrame | None = None,
    actions: pl.DataFrame | None = None,
    universe: Sequence[str] | None = None,
    membership: Membership | None = None,
    extra: Mapping[str, Expr] | None = None,
    runner: Runner | None = None,
    progress: Progress | None = None,
    months: int = 12,
    intraday: bool = False,
) -> OutOfCore:
    """Step 2 of the module docstring: one task per year of `history` on `runner`
    (default: this process), each writing its part to the exchange the scan wrote to
    (`local`: where `OutOfCore.local_parts` will put them); `intraday`: the exchange holds
    intraday fields for the blocks (`exchange_intraday`). On any failure the exchange is
    removed and the error raised."""
    try:
        lookback = max(e.lookback for e in feature_set(extra).values())
        by_year: dict[int, list[Period]] = {}
        for period in block_periods(history.days, lookback, months):
            by_year.setdefault(period.first.year, []).append(period)
        tasks = [YearTask(year, periods, history.exchange, f"features-{year}.parquet")
                 for year, periods in sorted(by_year.items())]
        runner = runner or LocalRunner()
        shared = StoredShared(sectors, fundamentals, actions, universe, membership, extra,
                              history.shares, history.spans.select("symbol", "first", "last"),
                              threads_for(runner), history.cumulative, intraday)
        report = (lambda done, total: progress(TASKS, done, total)) if progress else None
        if report is not None:
            report(0, len(tasks))
        runner.ship_code(user_modules(extra))
        results = runner.map(compute_year, tasks, shared=shared, progress=report)
    except BaseException:
        history.exchange.remove()
        raise
    parts = {r.year: (t.part, r.rows) for t, r in zip(tasks, results, strict=True) if r.rows}
    return OutOfCore(history, parts, list(results), local)
