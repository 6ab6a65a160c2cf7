"""Align the build's inputs into wide matrices: one row per symbol, one column per session.

`align_wide` turns long adjusted bars into float64 matrices (symbols x sessions) on the
NYSE session grid from the input's first bar to its last: row i is `symbols[i]` (sorted),
column j `dates[j]`. A symbol's span is the grid from its first to its last bar (`start[i]`
.. `end[i]`); a session without a bar stays NaN (nothing is forward-filled; each feature
documents what a missing bar does to it). Arrays: open, high, low, close, volume
(adjusted, same basis), dollar_volume (USD), shares_outstanding (known at t, on the
volume's basis; NaN when unknown).

Bad input (duplicate keys, a bar off the session grid, a non-positive or non-finite price,
an implausible market cap) raises DataValidationError naming the file, symbol and date: the
checks are vectorised, and a failure re-runs `panel.check_prices` and `panel.session_grid`
for their row-level messages.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import polars as pl

from aurora.calendar import sessions
from aurora.errors import DataValidationError
from aurora.features.buffers import blank
from aurora.features.panel import (
    PanelInfo,
    bar_values_ok,
    check_prices,
    sector_frame,
    session_grid,
    shares_table,
)
from aurora.features.parallel import map_blocks
from aurora.schemas import BAR_COLUMNS


@dataclass
class WidePanel:
    """Named (symbols x sessions) float64 arrays plus the labels and spans that give them
    meaning. `panel[name]` returns one of them."""

    symbols: list[str]
    dates: np.ndarray  # datetime64[D], the session of each column
    start: np.ndarray  # int64 (symbols,): column of each symbol's first bar
    end: np.ndarray  # int64 (symbols,): column of each symbol's last bar
    sectors: np.ndarray  # object (symbols,): sector of each row
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.symbols), len(self.dates)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    @cached_property
    def sector_codes(self) -> np.ndarray:
        """Group code of each row's sector (int64, 0..; sectors in sorted order)."""
        return np.unique(self.sectors, return_inverse=True)[1].astype(np.int64).ravel()

    def block(self, rows: slice, cols: slice) -> WidePanel:
        """The sub-panel of symbols `rows` x sessions `cols` (array views; spans counted
        from the block's first session)."""
        first = cols.start or 0
        return WidePanel(self.symbols[rows], self.dates[cols], self.start[rows] - first,
                         self.end[rows] - first, self.sectors[rows],
                         {k: v[rows, cols] for k, v in self.arrays.items()})


def _cast(prices: pl.DataFrame, optional: Sequence[str] = ()) -> pl.DataFrame | None:
    """The store schema's types, or None when a column is missing (let check_prices say so).
    `optional`: other float columns wanted, kept when the prices have them."""
    if any(c not in prices.columns for c in ("date", "symbol", *BAR_COLUMNS)):
        return None
    extra = [c for c in ("dollar_volume", *optional) if c in prices.columns]
    return prices.select(pl.col("date").cast(pl.Date), pl.col("symbol").cast(pl.String),
                         *[pl.col(c).cast(pl.Float64) for c in (*BAR_COLUMNS, *extra)])


def _raise_row_error(prices: pl.DataFrame) -> None:
    """Re-run the row-level checks, which raise the message naming symbol and date."""
    session_grid(check_prices(prices))
    raise DataValidationError("prices: invalid input")  # unreachable unless checks disagree


def _symbol_rows(symbol: pl.Series) -> tuple[list[str], np.ndarray]:
    """The sorted distinct symbols and each bar's row among them (int64). Bars sorted by
    symbol take one run-length pass; others a categorical lookup."""
    runs = symbol.rle()
    values = runs.struct.field("value")
    if values.len() < 2 or bool((values.slice(1) > values.slice(0, values.len() - 1)).all()):
        lengths = runs.struct.field("len").to_numpy()
        return values.to_list(), np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    names = symbol.unique().sort()
    return names.to_list(), symbol.cast(pl.Enum(names)).to_physical().to_numpy().astype(
        np.int64)


def _place(key: np.ndarray, values: pl.Series, holes: np.ndarray, shape: tuple[int, int]
           ) -> np.ndarray:
    """The matrix with values[i] at flat index key[i] and NaN at the flat indexes `holes`
    (every other cell): each cell written once, from the series' chunks (no copy of it)."""
    out = blank((shape[0] * shape[1],))
    bounds = np.cumsum([0, *map(len, chunks := values.get_chunks())])
    for chunk, lo, hi in zip(chunks, bounds, bounds[1:], strict=False):
        out[key[lo:hi]] = chunk.to_numpy()
    out[holes] = np.nan
    return out.reshape(shape)


def _shares_wide(table: pl.DataFrame, symbols: list[str], days: np.ndarray,
                 shape: tuple[int, int]) -> np.ndarray:
    """Shares known at each session: the last as_of <= the session (forward-filled)."""
    index = pl.DataFrame({"symbol": symbols, "_row": np.arange(len(symbols))})
    t = table.join(index, on="symbol").sort("as_of")
    col = np.searchsorted(days, t["as_of"].cast(pl.Int32).to_numpy(), side="left")
    inside = col < shape[1]
    key = t["_row"].to_numpy()[inside] * shape[1] + col[inside]
    vals = t["shares"].to_numpy()[inside]
    # several as_of in one session's gap: the latest one wins (unique keeps the first of the
    # reversed order, i.e. the last as_of)
    _, first = np.unique(key[::-1], return_index=True)
    keep = len(key) - 1 - first
    known = np.full(shape[0] * shape[1], np.nan)
    known[key[keep]] = vals[keep]
    known = known.reshape(shape)
    cols = np.arange(shape[1])[None, :]
    last = np.maximum.accumulate(np.where(np.isnan(known), -1, cols), axis=1)
    filled = np.take_along_axis(known, np.maximum(last, 0), axis=1)
    filled[last < 0] = np.nan
    return filled


def align_wide(
    prices: pl.DataFrame,
    *,
    sectors: Mapping[str, str] | pl.DataFrame | None,
    fundamentals: pl.DataFrame | None = None,
    actions: pl.DataFrame | None = None,
    optional: Sequence[str] = (),
    shares: pl.DataFrame | None = None,
    workers: int = 1,
) -> tuple[WidePanel, PanelInfo]:
    """Build the wide panel (see the module docstring) from adjusted prices. `optional`:
    other price columns to align when the prices have them (`vwap`). `shares`: the shares
    outstanding already resolved from `fundamentals` (`panel.shares_table`) on prices that
    reach further back than these (an incremental build's tail). `workers`: threads that
    place the columns (the result does not depend on it)."""
    info = PanelInfo()
    frame = _cast(prices, optional)
    if frame is None or frame.height == 0 or frame["symbol"].null_count() or frame[
            "date"].null_count() or not frame.select(bar_values_ok().all()).item():
        _raise_row_error(prices)
    assert frame is not None
    first, last = frame["date"].min(), frame["date"].max()
    assert isinstance(first, dt.date) and isinstance(last, dt.date)
    dates = pl.Series("date", sessions(first, last), dtype=pl.Date)
    days = dates.cast(pl.Int32).to_numpy()
    names, row = _symbol_rows(frame["symbol"])
    shape = (len(names), len(days))
    base = (first - dt.date(1970, 1, 1)).days  # bars' days from `first` index column_of_day
    column_of_day = np.full((last - first).days + 1, -1, dtype=np.int64)  # -1: not a session
    column_of_day[days - base] = np.arange(len(days))
    column = column_of_day[frame["date"].cast(pl.Int32).to_numpy() - base]
    if (column < 0).any():
        _raise_row_error(prices)  # a bar off the session grid
    key = row * shape[1] + column
    have = np.zeros(shape[0] * shape[1], dtype=np.bool_)
    have[key] = True
    if np.count_nonzero(have) != len(key):
        _raise_row_error(prices)  # a duplicate (symbol, date)
    holes = np.flatnonzero(~have)  # grid cells without a bar
    have = have.reshape(shape)
    start = have.argmax(axis=1).astype(np.int64)
    end = (shape[1] - 1 - have[:, ::-1].argmax(axis=1)).astype(np.int64)
    del have, row, column

    columns = [*BAR_COLUMNS, *(c for c in ("dollar_volume", *optional) if c in frame.columns)]
    placed = map_blocks(lambda c: _place(key, frame[c], holes, shape), columns,
                        workers)
    arrays = dict(zip(columns, placed, strict=True))
    if "dollar_volume" not in arrays:
        arrays["dollar_volume"] = arrays["close"] * arrays["volume"]
    table = sector_frame(sectors, names, info).sort("symbol")
    if shares is None:
        shares = shares_table(fundamentals, frame, actions, info)
    # none known: one read-only NaN broadcast, not a matrix of them
    arrays["shares_outstanding"] = (np.broadcast_to(np.float64(np.nan), shape)
                                    if shares is None else _shares_wide(shares, names, days, shape))
    info.grid_rows = int((end - start + 1).sum())
    info.missing_bars = info.grid_rows - frame.height
    panel = WidePanel(symbols=names, dates=dates.to_numpy(), start=start, end=end,
                      sectors=table["sector"].to_numpy(), arrays=arrays)
    return panel, info
