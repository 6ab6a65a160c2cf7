"""Incremental fetches: plan what to request, detect restatements, merge into the store.

Contract:
- `plan_fetch`: a symbol that the store lacks, or a store whose history starts after the
  requested start, is requested in full (`start`..`end`, purpose "full"). A stored symbol
  is requested from `overlap` sessions before its last stored session (capped at `end`)
  up to `end` (purpose "incremental"), so the overlap re-reads stored bars: a symbol
  already stored through `end` still has its last `overlap` sessions confirmed by the
  server (it is also listed in `up_to_date`). A stored symbol named in `reconcile` is
  re-read over its whole history instead, `reconcile_from`..max(`end`, its last stored
  session) (purpose "reconcile"). Symbols sharing a window are batched together.
- `find_restatements`: inside each compared window (the overlap; the whole history for
  "reconcile"), every stored bar must come back unchanged (open, high, low, close, volume,
  vwap, trade_count within a relative 1e-9) and no new bar may appear between stored bars.
  Any difference (a new split or dividend under adjusted prices, a vendor correction)
  marks the symbol, with the first differing date.
- `merge_prices`: stored rows of kept symbols, minus the symbols being replaced, with
  fetched rows winning on (symbol, date); one row per (symbol, date), sorted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import polars as pl

from aurora.calendar import sessions_back
from aurora.fetch.batches import BatchRequest, make_batches

COMPARED = ["open", "high", "low", "close", "volume", "vwap", "trade_count"]
REL_TOLERANCE = 1e-9


@dataclass
class FetchPlan:
    """What one run requests. `windows` maps each requested symbol to (start, end, purpose)."""

    start: dt.date
    end: dt.date
    batches: list[BatchRequest]
    windows: dict[str, tuple[dt.date, dt.date, str]] = field(default_factory=dict)
    up_to_date: list[str] = field(default_factory=list)

    def symbols(self, purpose: str) -> list[str]:
        return [s for s, (_, _, p) in self.windows.items() if p == purpose]


def plan_fetch(
    stored: pl.DataFrame | None,
    symbols: Sequence[str],
    start: dt.date,
    end: dt.date,
    *,
    batch_size: int,
    overlap: int,
    stored_from: dt.date | None = None,
    reconcile: Iterable[str] = (),
    reconcile_from: dt.date | None = None,
) -> FetchPlan:
    """Plan the requests for `symbols` over sessions `start`..`end` (see module docstring).

    `stored_from` is the earliest start the stored history was requested from (from the
    manifest); when it is after `start`, every symbol is requested in full. `reconcile`
    names stored symbols to re-read from `reconcile_from` (default `start`) instead.
    """
    last: dict[str, dt.date] = {}
    if stored is not None and stored.height and (stored_from is None or stored_from <= start):
        last = dict(stored.group_by("symbol").agg(pl.col("date").max()).iter_rows())
    deep = set(reconcile)
    windows: dict[str, tuple[dt.date, dt.date, str]] = {}
    up_to_date: list[str] = []
    for symbol in symbols:
        stored_last = last.get(symbol)
        if stored_last is None or stored_last < start:
            windows[symbol] = (start, end, "full")
            continue
        if stored_last >= end:
            up_to_date.append(symbol)
        if symbol in deep:
            windows[symbol] = (min(reconcile_from or start, start), max(end, stored_last),
                               "reconcile")
        else:
            windows[symbol] = (max(sessions_back(min(stored_last, end), overlap), start), end,
                               "incremental")
    groups: dict[tuple[dt.date, dt.date, str], list[str]] = {}
    for symbol, window in windows.items():
        groups.setdefault(window, []).append(symbol)
    batches: list[BatchRequest] = []
    for (w_start, w_end, purpose), members in sorted(groups.items()):
        batches.extend(make_batches(members, w_start, w_end, batch_size, purpose))
    return FetchPlan(start, end, batches, windows, up_to_date)


def _differs(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    tolerance = pl.max_horizontal(a.abs(), b.abs(), pl.lit(1.0)) * REL_TOLERANCE
    value_diff = (a.cast(pl.Float64) - b.cast(pl.Float64)).abs() > tolerance
    return pl.when(a.is_null() & b.is_null()).then(False).when(
        a.is_null() | b.is_null()).then(True).otherwise(value_diff)


def find_restatements(
    stored: pl.DataFrame, fetched: pl.DataFrame, plan: FetchPlan,
    purpose: str = "incremental",
) -> dict[str, str]:
    """Symbols of `purpose` whose re-read window differs from the store, each with a short
    reason naming the first differing date."""
    checked = plan.symbols(purpose)
    if not checked or stored.height == 0:
        return {}
    starts = pl.DataFrame(
        {"symbol": checked, "w_start": [plan.windows[s][0] for s in checked],
         "w_end": [plan.windows[s][1] for s in checked]},
        schema={"symbol": pl.String, "w_start": pl.Date, "w_end": pl.Date},
    )
    old = stored.join(starts, on="symbol").filter(
        pl.col("date").is_between(pl.col("w_start"), pl.col("w_end")))
    last = old.group_by("symbol").agg(pl.col("date").max().alias("last"))
    new = fetched.join(last, on="symbol").join(starts, on="symbol").filter(
        (pl.col("date") <= pl.col("last")) & (pl.col("date") >= pl.col("w_start"))
    )
    joined = old.select("symbol", "date", *COMPARED).join(
        new.select("symbol", "date", *COMPARED), on=["symbol", "date"], how="full",
        coalesce=True, suffix="_new",
    )
    old_missing = pl.col("open").is_null() & pl.col("close").is_null()
    new_missing = pl.col("open_new").is_null() & pl.col("close_new").is_null()
    changed = pl.any_horizontal([_differs(pl.col(c), pl.col(f"{c}_new")) for c in COMPARED])
    flagged = joined.with_columns(
        reason=pl.when(new_missing).then(pl.lit("stored bar no longer served"))
        .when(old_missing).then(pl.lit("new bar inside stored history"))
        .when(changed).then(pl.lit("bar values changed"))
        .otherwise(None)
    ).filter(pl.col("reason").is_not_null()).sort("symbol", "date")
    reasons: dict[str, str] = {}
    for symbol, day, reason in flagged.select("symbol", "date", "reason").iter_rows():
        reasons.setdefault(symbol, f"{reason} on {day}")
    return reasons


def merge_prices(
    stored: pl.DataFrame | None,
    fetched: Iterable[pl.DataFrame],
    *,
    keep_symbols: Iterable[str],
    replace_symbols: Iterable[str] = (),
) -> pl.DataFrame:
    """Stored rows of `keep_symbols` (minus `replace_symbols`) updated by `fetched`."""
    frames = [f for f in fetched if f.height]
    new = pl.concat(frames, how="vertical_relaxed") if frames else None
    parts: list[pl.DataFrame] = []
    if stored is not None and stored.height:
        keep = set(keep_symbols) - set(replace_symbols)
        base = stored.filter(pl.col("symbol").is_in(list(keep)))
        if new is not None:
            base = base.join(new.select("symbol", "date"), on=["symbol", "date"], how="anti")
        parts.append(base.select(new.columns if new is not None else base.columns))
    if new is not None:
        parts.append(new)
    if not parts:
        return pl.DataFrame()
    merged = pl.concat(parts, how="vertical_relaxed")
    return merged.unique(["symbol", "date"], keep="last", maintain_order=True).sort(
        "symbol", "date"
    )
