"""`generate_market`: a deterministic synthetic equity market with raw bars and actions.

See docs/synthetic-market.md for the model. Determinism: every path is simulated from
`ORIGIN` (2000-01-03) to `end` with random streams keyed by (seed, symbol) or (seed, factor
name) and indexed by session, then sliced to [start, end]. So the bar of a (symbol, session)
is the same whatever range or universe was requested (given the same seed and sector).
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from aurora.calendar import sessions
from aurora.errors import ConfigError
from aurora.schemas import CORPORATE_ACTIONS_SCHEMA, PRICES_SCHEMA
from aurora.universe import default_sectors, ticker_problem
from aurora_testbed.synthetic.factors import FACTOR_GARCH, MARKET_VOL, SECTOR_VOL, garch_returns
from aurora_testbed.synthetic.simulate import BlockResult, simulate_block
from aurora_testbed.synthetic.streams import ORIGIN, factor_normals, hashed_sector

PLANTED_RENAMES: Mapping[str, tuple[str, dt.date]] = {
    "META": ("FB", dt.date(2022, 6, 9)),
    "ELV": ("ANTM", dt.date(2022, 6, 28)),
}
"""new symbol -> (old symbol, ex_date): applied when the new symbol is requested."""

_CELLS_PER_CHUNK = 6_000_000  # sessions x names simulated at once (bounds memory)

BARS_SCHEMA = PRICES_SCHEMA
ACTIONS_SCHEMA = CORPORATE_ACTIONS_SCHEMA
GAPS_SCHEMA = {"symbol": pl.String, "date": pl.Date}


@dataclass(frozen=True, eq=False)
class SyntheticMarket:
    """A generated market. Frames follow the shared prices / corporate-actions schemas.

    bars: RAW daily bars sorted by symbol then date (symbol as traded that day).
    corporate_actions: splits, dividends and renames with ex_date in [start, end].
    halts / missing_bars: (symbol, date) sessions in [start, end] that have no bar.
    sectors: requested symbol -> sector used for its sector factor.
    """

    bars: pl.DataFrame
    corporate_actions: pl.DataFrame
    halts: pl.DataFrame
    missing_bars: pl.DataFrame
    sectors: Mapping[str, str]
    symbols: tuple[str, ...]
    start: dt.date
    end: dt.date
    seed: int


def generate_market(
    symbols: Sequence[str],
    start: dt.date,
    end: dt.date,
    *,
    sectors: Mapping[str, str] | None = None,
    seed: int = 7,
) -> SyntheticMarket:
    """Simulate raw daily bars for `symbols` on the NYSE sessions in [start, end].

    sectors: symbol -> sector; symbols it lacks take the default-universe sector, else a
    sector chosen from a hash of (seed, symbol). Raises ConfigError on an empty or invalid
    symbol list, start before 2000-01-03, or start after end.
    """
    names = _check_request(symbols, start, end)
    sector_of = _resolve_sectors(names, sectors, seed)
    all_sessions = sessions(ORIGIN, end)
    first = bisect.bisect_left(all_sessions, start)
    simulated = np.array(all_sessions, dtype="datetime64[D]")
    factor_names = sorted(set(sector_of.values()))
    factors = _factor_paths(seed, factor_names, len(all_sessions))
    ordered = sorted(names)
    chunk = max(1, _CELLS_PER_CHUNK // max(len(all_sessions), 1))
    parts = [
        _simulate_chunk(
            seed, ordered[i : i + chunk], sector_of, factor_names, factors, first, simulated
        )
        for i in range(0, len(ordered), chunk)
    ]
    renames = {new: PLANTED_RENAMES[new] for new in ordered if new in PLANTED_RENAMES}
    bars, actions, halts, missing = (
        _traded_symbols(pl.concat([p[j] for p in parts]), renames) for j in range(4)
    )
    actions = pl.concat([actions, _rename_actions(renames, start, end, seed)])
    if renames:
        bars = bars.sort("symbol", "date")
    return SyntheticMarket(
        bars=bars,
        corporate_actions=actions.sort("ex_date", "symbol", "action_type"),
        halts=halts.sort("symbol", "date"),
        missing_bars=missing.sort("symbol", "date"),
        sectors=dict(sector_of),
        symbols=tuple(names),
        start=start,
        end=end,
        seed=seed,
    )


def _check_request(symbols: Sequence[str], start: dt.date, end: dt.date) -> list[str]:
    if isinstance(symbols, str):
        raise ConfigError("generate_market: symbols must be a sequence of tickers, not a string")
    names = list(symbols)
    if not names:
        raise ConfigError("generate_market: the symbol list is empty")
    for name in names:
        problem = ticker_problem(name) if isinstance(name, str) else f"{name!r} is not a string"
        if problem is None and name != name.upper():
            problem = f"symbol {name!r} is not upper case"
        if problem:
            raise ConfigError(f"generate_market: {problem}")
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ConfigError(f"generate_market: duplicate symbol {dup!r}")
    for new, (old, _) in PLANTED_RENAMES.items():
        if new in names and old in names:
            raise ConfigError(f"generate_market: {old!r} is the old name of {new!r}; ask for {new}")
    if start < ORIGIN:
        raise ConfigError(f"generate_market: start {start} is before the origin {ORIGIN}")
    if start > end:
        raise ConfigError(f"generate_market: start {start} is after end {end}")
    return names


def _resolve_sectors(
    names: list[str], sectors: Mapping[str, str] | None, seed: int
) -> dict[str, str]:
    known = default_sectors()
    given = sectors or {}
    return {n: given.get(n) or known.get(n) or hashed_sector(seed, n) for n in names}


def _factor_paths(seed: int, sector_names: list[str], n_sessions: int) -> dict[str, np.ndarray]:
    """Market and sector factor returns and conditional vols, columns [market, *sectors]."""
    keys = ["market", *(f"sector:{s}" for s in sector_names)]
    shocks = np.column_stack([factor_normals(seed, k, n_sessions) for k in keys])
    vol = np.array([MARKET_VOL] + [SECTOR_VOL] * len(sector_names))
    returns, sigma = garch_returns(shocks, vol, FACTOR_GARCH)
    return {"returns": returns, "sigma": sigma}


def _simulate_chunk(
    seed: int,
    block: list[str],
    sector_of: Mapping[str, str],
    sector_names: list[str],
    factors: dict[str, np.ndarray],
    first: int,
    simulated: np.ndarray,
) -> tuple[pl.DataFrame, ...]:
    """Bars, actions, halts and missing bars of one block of names (generator symbols).

    simulated: every session from ORIGIN to end (datetime64[D]); first: the window start.
    """
    window = simulated[first:]
    force_bar: dict[int, int] = {}
    for j, name in enumerate(block):  # the first session under a new name always has a bar
        if name in PLANTED_RENAMES:
            day = np.datetime64(PLANTED_RENAMES[name][1])
            at = int(np.searchsorted(simulated, day))
            if at < simulated.size and simulated[at] == day:
                force_bar[j] = at
    column = np.array([1 + sector_names.index(sector_of[s]) for s in block])
    result = simulate_block(seed, block, column, factors, first, force_bar)
    absent = result.halted | result.missing
    return (
        _bars_frame(block, window, result.bars, absent),
        _actions_frame(seed, block, window, result, first),
        _gaps_frame(block, window, result.halted),
        _gaps_frame(block, window, result.missing),
    )


def _bars_frame(
    block: list[str], window: np.ndarray, arrays: dict[str, np.ndarray], absent: np.ndarray
) -> pl.DataFrame:
    keep = ~absent.T.ravel()
    n_rows = window.size
    index = np.repeat(np.arange(len(block)), n_rows)[keep]
    data: dict[str, object] = {
        "date": pl.Series(np.tile(window, len(block))[keep]),
        "symbol": pl.Series(block, dtype=pl.String).gather(index),
    }
    for name in ("open", "high", "low", "close", "volume", "vwap", "trade_count"):
        data[name] = arrays[name].T.ravel()[keep]
    return pl.DataFrame(data).cast(BARS_SCHEMA)  # type: ignore[arg-type]


def _gaps_frame(block: list[str], window: np.ndarray, mask: np.ndarray) -> pl.DataFrame:
    rows, cols = np.nonzero(mask)
    return pl.DataFrame(
        {"symbol": [block[c] for c in cols], "date": pl.Series(window[rows], dtype=pl.Date)},
        schema=GAPS_SCHEMA,
    )


def _actions_frame(
    seed: int, block: list[str], window: np.ndarray, result: BlockResult, first: int
) -> pl.DataFrame:
    splits = result.splits
    n_split, n_div = splits.session.size, result.dividend_session.size
    sessions_in = np.concatenate([splits.session, result.dividend_session]) - first
    columns = np.concatenate([splits.column, result.dividend_column])
    kinds = [
        "forward_split" if n > o else "reverse_split"
        for o, n in zip(splits.old_rate, splits.new_rate, strict=True)
    ]
    kinds += ["cash_dividend"] * n_div
    frame = pl.DataFrame(
        {
            "action_type": kinds,
            "symbol": pl.Series(block, dtype=pl.String).gather(columns),
            "old_symbol": pl.Series([None] * len(kinds), dtype=pl.String),
            "ex_date": pl.Series(window[sessions_in], dtype=pl.Date),
            "old_rate": np.concatenate([splits.old_rate, np.full(n_div, np.nan)]),
            "new_rate": np.concatenate([splits.new_rate, np.full(n_div, np.nan)]),
            "cash_rate": np.concatenate([np.full(n_split, np.nan), result.dividend_cash]),
        }
    )
    ids = [
        _action_id(seed, symbol, kind, day)
        for symbol, kind, day in frame.select("symbol", "action_type", "ex_date").iter_rows()
    ]
    return (
        frame.with_columns(
            pl.Series("id", ids, dtype=pl.String),
            pl.col("ex_date").alias("process_date"),
            pl.col("old_rate", "new_rate", "cash_rate").fill_nan(None),
        )
        .select(list(ACTIONS_SCHEMA))
        .cast(ACTIONS_SCHEMA)
    )  # type: ignore[arg-type]


def _rename_actions(
    renames: Mapping[str, tuple[str, dt.date]], start: dt.date, end: dt.date, seed: int
) -> pl.DataFrame:
    rows = [
        {
            "id": _action_id(seed, new, "name_change", day),
            "action_type": "name_change",
            "symbol": new,
            "old_symbol": old,
            "ex_date": day,
            "process_date": day,
        }
        for new, (old, day) in renames.items()
        if start <= day <= end
    ]
    return pl.DataFrame(rows, schema=ACTIONS_SCHEMA)


def _traded_symbols(
    frame: pl.DataFrame, renames: Mapping[str, tuple[str, dt.date]]
) -> pl.DataFrame:
    """Replace a renamed symbol by its old name on rows dated before the rename."""
    date_column = "ex_date" if "ex_date" in frame.columns else "date"
    expr = pl.col("symbol")
    for new, (old, day) in renames.items():
        expr = (
            pl.when((pl.col("symbol") == new) & (pl.col(date_column) < day))
            .then(pl.lit(old))
            .otherwise(expr)
        )
    return frame.with_columns(expr.alias("symbol")) if renames else frame


def _action_id(seed: int, symbol: str, kind: str, day: dt.date) -> str:
    """A deterministic UUID-shaped id: BLAKE2b of (seed, symbol, kind, ex_date)."""
    digest = hashlib.blake2b(f"{seed}|{symbol}|{kind}|{day}".encode(), digest_size=16)
    return str(uuid.UUID(bytes=digest.digest()))
