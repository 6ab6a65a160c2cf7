"""Split and dividend adjustment of daily bars, with Alpaca's semantics.

Contract (shared by fetch, features, the emulator and the synthetic market):

* A split with ex_date E on symbol S multiplies every S price (open, high, low, close, vwap)
  dated before E by old_rate / new_rate and every S volume dated before E by
  new_rate / old_rate. A 2-for-1 split (old_rate 1, new_rate 2) halves earlier prices and
  doubles earlier volumes; a 1-for-10 reverse split (old_rate 10, new_rate 1) multiplies
  earlier prices by 10.
* A cash dividend of `cash_rate` per share with ex_date E on S multiplies every S price dated
  before E by 1 - cash_rate / C, where C is the RAW close of S's last bar before E (normally
  the session before E; if that bar is missing, the last raw close before E). Volume is not
  touched by dividends. A dividend with no S bar before E affects no row and is skipped.
* A spin-off (`point_in_time` only) is a distribution in kind: holders of `old_rate` parent
  shares receive `new_rate` shares of `target_symbol`, worth (`spin_off_values`)
  new_rate / old_rate x the RAW close of target_symbol on the ex_date. It adjusts the
  parent like a cash dividend of that value. When the company spun off has no bar on the
  ex_date in `bars` (it is not in the store), its value is unknown and the spin-off adjusts
  nothing: the parent's total return then shows the distribution as a loss, and validation
  says so (`explained_move`).
* Only actions with ex_date <= as_of are applied (as_of None: all of them). Factors compose
  multiplicatively, so 'all' is the split adjustment followed by the dividend adjustment.
* Actions match bars on the symbol column exactly. name_change rows and any other action
  type are ignored: a rename does not move history between symbols here.
* trade_count and any other column pass through untouched; rows and their order are
  preserved; the output volume is Float64 whatever the input volume type.

Bad input (missing columns, null or non-positive split rates, a dividend that is null,
negative or not smaller than the prior close, a null ex_date) raises DataValidationError
naming the action id, symbol and ex_date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Literal, get_args

import numpy as np
import polars as pl

from aurora.errors import ConfigError, DataValidationError
from aurora.schemas import (
    BAR_COLUMNS,
    DIVIDEND_TYPES,
    PER_SHARE_COLUMNS,
    SPIN_OFF_TYPES,
    SPLIT_TYPES,
)

AdjustmentMode = Literal["raw", "split", "dividend", "all"]
ADJUSTMENT_MODES: tuple[str, ...] = get_args(AdjustmentMode)
_REQUIRED_BAR_COLUMNS = ("date", "symbol", *BAR_COLUMNS)
_REQUIRED_ACTION_COLUMNS = ("id", "action_type", "symbol", "ex_date")

_FACTOR_SCHEMA = {
    "symbol": pl.String,
    "ex_date": pl.Date,
    "price_factor": pl.Float64,
    "volume_factor": pl.Float64,
}


def adjust_bars(
    bars: pl.DataFrame,
    actions: pl.DataFrame,
    mode: AdjustmentMode,
    as_of: dt.date | None = None,
) -> pl.DataFrame:
    """Return `bars` adjusted for the splits and/or dividends in `actions` (see module doc).

    `bars` follows the prices schema (date, symbol, open, high, low, close, volume, optional
    vwap and trade_count; volume Int64 or Float64). `actions` follows the corporate-actions
    schema. mode 'raw' returns the bars unchanged except for volume cast to Float64.
    """
    _check_bars(bars)
    factors = adjustment_factors(bars, actions, mode, as_of)
    price_factor = factors.get_column("price_factor")
    volume_factor = factors.get_column("volume_factor")
    updates = [
        (pl.col(name) * price_factor).cast(pl.Float64).alias(name)
        for name in PER_SHARE_COLUMNS
        if name in bars.columns
    ]
    updates.append((pl.col("volume").cast(pl.Float64) * volume_factor).alias("volume"))
    return bars.with_columns(updates)


def adjustment_factors(
    bars: pl.DataFrame,
    actions: pl.DataFrame,
    mode: AdjustmentMode,
    as_of: dt.date | None = None,
) -> pl.DataFrame:
    """Per-row factors: adjusted price = raw price * price_factor, volume likewise.

    Returns one row per row of `bars`, in the same order, with columns symbol, date,
    price_factor, volume_factor (Float64; 1.0 where no action applies). Only `bars`' date,
    symbol and close columns are read (close for the dividend ratios).
    """
    if mode not in ADJUSTMENT_MODES:
        raise ConfigError(f"unknown adjustment mode {mode!r} (expected one of {ADJUSTMENT_MODES})")
    _check_bars(bars, required=("date", "symbol", "close"))
    chosen = _applicable_actions(bars, actions, mode, as_of)
    price = np.ones(bars.height)
    volume = np.ones(bars.height)
    if chosen.height and bars.height:
        index = _index_of(bars, chosen)
        events = _events(index, chosen)
        # Factor in force on a bar dated d = product over actions with ex_date > d: take a
        # cumulative product from the latest ex_date backwards.
        cumulative = events.sort("symbol", "ex_date", descending=[False, True]).with_columns(
            pl.col("price_factor").cum_prod().over("symbol"),
            pl.col("volume_factor").cum_prod().over("symbol"),
        )
        price = _in_force(index, cumulative, "price_factor")
        volume = _in_force(index, cumulative, "volume_factor")
    return bars.select(
        "symbol",
        "date",
        pl.Series("price_factor", price, dtype=pl.Float64),
        pl.Series("volume_factor", volume, dtype=pl.Float64),
    )


def _index_of(bars: pl.DataFrame, chosen: pl.DataFrame) -> _BarIndex:
    """The bar index over the symbols that `chosen` actions adjust."""
    return _BarIndex(bars, sorted(set(chosen.get_column("symbol").to_list())))


def _events(index: _BarIndex, chosen: pl.DataFrame) -> pl.DataFrame:
    """One row per (symbol, ex_date) of `chosen` with the product of that day's actions'
    price_factor and volume_factor: the backward factors of the module docstring."""
    splits = chosen.filter(pl.col("action_type").is_in(SPLIT_TYPES))
    dividends = chosen.filter(pl.col("action_type").is_in(DIVIDEND_TYPES))
    events = pl.concat([_split_factors(splits), _dividend_factors(index, dividends)])
    return events.group_by("symbol", "ex_date").agg(
        pl.col("price_factor").product(), pl.col("volume_factor").product())


def spin_off_values(actions: pl.DataFrame, closes: pl.DataFrame | None) -> pl.DataFrame:
    """Per spin-off row of `actions`: symbol (the parent), ex_date, target_symbol and
    `value`, USD per parent share: new_rate / old_rate x the close of target_symbol on the
    ex_date in `closes` (symbol, date, close); null when that close is not known or a rate
    is not positive. Other action types give no row."""
    schema = {"symbol": pl.String, "ex_date": pl.Date, "target_symbol": pl.String,
              "value": pl.Float64}
    if actions.height == 0 or "action_type" not in actions.columns:
        return pl.DataFrame(schema=schema)
    spins = actions.filter(pl.col("action_type").is_in(SPIN_OFF_TYPES))
    if spins.height == 0:
        return pl.DataFrame(schema=schema)
    spins = spins.with_columns(
        (pl.col("target_symbol").cast(pl.String) if "target_symbol" in spins.columns
         else pl.lit(None, dtype=pl.String).alias("target_symbol")),
        *(pl.col(c).cast(pl.Float64) if c in spins.columns
          else pl.lit(None, dtype=pl.Float64).alias(c) for c in ("old_rate", "new_rate")),
        pl.col("ex_date").cast(pl.Date))
    if closes is not None and closes.height:
        target = (closes.select(target_symbol=pl.col("symbol"), ex_date=pl.col("date"),
                                _close=pl.col("close").cast(pl.Float64))
                  .unique(["target_symbol", "ex_date"], keep="first"))
        spins = spins.join(target, on=["target_symbol", "ex_date"], how="left")
    else:
        spins = spins.with_columns(pl.lit(None, dtype=pl.Float64).alias("_close"))
    ok = (pl.col("old_rate") > 0) & (pl.col("new_rate") > 0) & (pl.col("_close") > 0)
    return spins.select(
        "symbol", "ex_date", "target_symbol",
        pl.when(ok).then(pl.col("new_rate") / pl.col("old_rate") * pl.col("_close"))
        .alias("value"))


def _spin_off_dividends(bars: pl.DataFrame, actions: pl.DataFrame,
                        symbols: pl.Series | None = None) -> pl.DataFrame:
    """The valued spin-offs of `actions` as cash-dividend rows (cash_rate = value)."""
    held = bars.get_column("symbol") if symbols is None else symbols
    valued = spin_off_values(actions, bars.select("symbol", "date", "close")).filter(
        pl.col("value").is_not_null() & pl.col("symbol").is_in(held.unique().implode()))
    return valued.select(
        pl.format("spin_off {} {}", pl.col("symbol"), pl.col("ex_date")).alias("id"),
        pl.lit("cash_dividend").alias("action_type"), "symbol", "ex_date",
        pl.col("value").alias("cash_rate"))


def unusable_actions(bars: pl.DataFrame, actions: pl.DataFrame | None) -> pl.DataFrame:
    """The splits, cash dividends and valued spin-offs of `actions` that cannot adjust
    `bars`, one row each: id, action_type, symbol, ex_date and `problem` (a split without
    positive finite rates; a distribution whose value is missing, negative or not below
    the last raw close before its ex-date, or whose prior close is not positive).
    `point_in_time` leaves them out; validation reports them (`bad_action`)."""
    chosen = (_adjusting_actions(bars, actions) if actions is not None and bars.height
              else pl.DataFrame())
    if chosen.height == 0:
        return pl.DataFrame(schema=_UNUSABLE_SCHEMA)
    return _unusable(chosen, _index_of(bars, chosen))


_UNUSABLE_SCHEMA = {"id": pl.String, "action_type": pl.String, "symbol": pl.String,
                    "ex_date": pl.Date, "problem": pl.String}


def _adjusting_actions(bars: pl.DataFrame, actions: pl.DataFrame,
                       symbols: pl.Series | None = None) -> pl.DataFrame:
    """The splits and cash dividends of `actions`, and its valued spin-offs as dividends,
    with Float64 old_rate, new_rate and cash_rate (null where an action has none), of the
    symbols with bars (`symbols`, default those of `bars`)."""
    if actions.height == 0:
        return pl.DataFrame()
    chosen = _applicable_actions(bars, actions, "all", None, symbols)
    spins = _spin_off_dividends(bars, actions, symbols)
    if spins.height:
        chosen = (pl.concat([chosen, spins], how="diagonal_relaxed") if chosen.height
                  else spins)
    if chosen.height == 0:
        return chosen
    return chosen.with_columns(
        pl.col(c).cast(pl.Float64) if c in chosen.columns else pl.lit(None, pl.Float64).alias(c)
        for c in ("old_rate", "new_rate", "cash_rate"))


def _unusable(chosen: pl.DataFrame, index: _BarIndex) -> pl.DataFrame:
    """The rows of `_adjusting_actions` that cannot adjust the bars of `index`, with their
    `problem` (`unusable_actions`)."""
    found, close = index.previous_close(chosen["symbol"], chosen["ex_date"])
    old, new, cash, prior = (pl.col("old_rate"), pl.col("new_rate"), pl.col("cash_rate"),
                             pl.col("_prior"))
    is_split = pl.col("action_type").is_in(SPLIT_TYPES)
    bad_split = is_split & (old.is_null() | new.is_null() | ~(old > 0) | ~(new > 0)
                            | ~old.is_finite() | ~new.is_finite())
    bad_cash = ~is_split & (cash.is_null() | ~(cash >= 0) | ~cash.is_finite())
    bad_prior = ~is_split & ~bad_cash & pl.col("_found") & (
        prior.is_null() | ~(prior > 0) | ~(cash < prior))
    problem = (
        pl.when(bad_split).then(pl.lit("needs positive old_rate and new_rate"))
        .when(bad_cash).then(pl.format("needs a value per share >= 0 (got {})", cash))
        .when(bad_prior).then(pl.format("{} per share is not below the last raw close before "
                                        "the ex-date ({})", cash, prior)))
    return (chosen.with_columns(_found=pl.Series(found), _prior=close)
            .with_columns(problem=problem).filter(pl.col("problem").is_not_null())
            .select(pl.col("id").cast(pl.String), "action_type", "symbol",
                    pl.col("ex_date").cast(pl.Date), "problem"))


def point_in_time(bars: pl.DataFrame, actions: pl.DataFrame | None) -> pl.DataFrame:
    """RAW bars adjusted point in time: what a feature or label at date d may use.

    Every price (open, high, low, close, vwap) is multiplied by the product, over the
    splits, cash dividends and valued spin-offs of its symbol with ex_date <= d, of the
    inverse of their backward factor (module docstring), and volume likewise for splits:
    a total-return, split-adjusted series anchored on the symbol's first bar, so the value
    on d depends only on raw bars and actions up to d, never on anything later (zipline
    stores raw prices and applies adjustments in the same perspective). Ratios of two dates
    (returns, ratios of means) equal those of the vendor's `adjustment=all` bars (spin-offs
    aside): forward and backward adjustments differ by one constant per
    symbol and as-of date. `dollar_volume` is added:
    raw close x raw volume, the USD actually traded that day. Nothing is inverted.

    `bars` follows the prices schema; rows and their order are kept. An action that cannot
    adjust them (`unusable_actions`: validation reports it as `bad_action`) is left out, so
    one bad action never stops the build for every symbol. The same as
    `apply_point_in_time(bars, cumulate(point_in_time_events(bars, actions)))`, the form a
    build that reads its bars a year at a time uses.
    """
    _check_bars(bars)
    events, index = _events_and_index(bars, actions, None)
    return apply_point_in_time(bars, cumulate(events), index)


def point_in_time_events(bars: pl.DataFrame, actions: pl.DataFrame | None,
                         symbols: pl.Series | None = None) -> pl.DataFrame:
    """(symbol, ex_date, price_factor, volume_factor): each usable action day's backward
    factors (module docstring), from the raw `bars` it needs: for an action, the last bar
    of its symbol before its ex_date (a dividend's prior close) and, for a spin-off, the
    target's bar on the ex_date. `symbols`: the symbols that have bars (default: those of
    `bars`), when `bars` holds only the bars these actions need."""
    return _events_and_index(bars, actions, symbols)[0]


def _events_and_index(bars: pl.DataFrame, actions: pl.DataFrame | None,
                      symbols: pl.Series | None) -> tuple[pl.DataFrame, _BarIndex | None]:
    """`point_in_time_events` and the bar index it was found with (None without actions),
    which also serves `apply_point_in_time` on the same bars."""
    chosen = (_adjusting_actions(bars, actions, symbols)
              if actions is not None and bars.height else pl.DataFrame())
    index = None
    if chosen.height:
        index = _index_of(bars, chosen)
        bad = _unusable(chosen, index)
        if bad.height:
            chosen = chosen.filter(~pl.col("id").cast(pl.String).is_in(bad["id"].implode()))
    if chosen.height == 0:
        return pl.DataFrame(schema=_FACTOR_SCHEMA), index
    return _events(index, chosen), index


def cumulate(events: pl.DataFrame) -> pl.DataFrame:
    """`point_in_time_events` (of one or several disjoint sets of actions) as cumulative
    forward factors: per (symbol, ex_date), the product of the inverse factors of the
    symbol's action days up to that ex_date."""
    return events.sort("symbol", "ex_date").with_columns(
        (1.0 / pl.col("price_factor")).cum_prod().over("symbol").alias("price_factor"),
        (1.0 / pl.col("volume_factor")).cum_prod().over("symbol").alias("volume_factor"),
    )


def apply_point_in_time(bars: pl.DataFrame, cumulative: pl.DataFrame,
                        index: _BarIndex | None = None) -> pl.DataFrame:
    """RAW `bars` (any subset of a history: a year, a tail) times the cumulative factors
    (`cumulate`) in force on each bar's date, plus `dollar_volume` (raw close x raw
    volume): `point_in_time`'s values for those bars. `index`: a `_BarIndex` of these same
    bars whose symbols include every symbol of `cumulative` (built here when None)."""
    dollar_volume = (pl.col("close").cast(pl.Float64) * pl.col("volume").cast(pl.Float64))
    price = np.ones(bars.height)
    volume = np.ones(bars.height)
    if cumulative.height and bars.height:
        if index is None:
            index = _BarIndex(bars, sorted(set(cumulative.get_column("symbol").to_list())))
        price, volume = _in_force_since(index, cumulative, ("price_factor", "volume_factor"))
    price_factor = pl.Series("_pf", price, dtype=pl.Float64)
    updates = [(pl.col(name) * price_factor).cast(pl.Float64).alias(name)
               for name in PER_SHARE_COLUMNS if name in bars.columns]
    updates.append((pl.col("volume").cast(pl.Float64) * pl.Series(volume)).alias("volume"))
    return bars.with_columns(dollar_volume.alias("dollar_volume")).with_columns(updates)


def _in_force_since(index: _BarIndex, cumulative: pl.DataFrame, columns: Sequence[str]
                    ) -> list[np.ndarray]:
    """Per column and bar of `index`, the column's value in the last row of `cumulative`
    (symbol, ex_date, columns: cumulative forward factors of actions up to that ex_date)
    with ex_date on or before the bar's date; 1.0 where no action came before."""
    codes, keys = index.encode(cumulative["symbol"], cumulative["ex_date"])
    if keys.size == 0:
        return [np.ones(index.keys.size) for _ in columns]
    order = np.argsort(keys, kind="stable")
    codes, keys = codes[order], keys[order]
    upto = np.searchsorted(keys, index.keys, side="right") - 1  # last action on/before the bar
    clamped = np.maximum(upto, 0)
    hit = (upto >= 0) & (codes[clamped] == index.codes)
    row = order[clamped]
    return [np.where(hit, cumulative[c].to_numpy()[row], 1.0) for c in columns]


class _BarIndex:
    """Bars keyed by (symbol code, date) as sortable int64 keys for numpy searchsorted.

    Codes number the given symbols (those with actions); every other symbol gets -1.
    """

    def __init__(self, bars: pl.DataFrame, symbols: list[str]) -> None:
        self.mapping = {symbol: code for code, symbol in enumerate(symbols)}
        dates = bars.get_column("date")
        if dates.null_count():
            raise DataValidationError(f"bars: row {dates.is_null().arg_true()[0]} has no date")
        self.codes, self.keys = self.encode(bars.get_column("symbol"), dates)
        order = np.argsort(self.keys, kind="stable")
        self.sorted_keys = self.keys[order]
        self.sorted_codes = self.codes[order]
        self.sorted_close = bars.get_column("close").cast(pl.Float64).to_numpy()[order]

    def encode(self, symbols: pl.Series, dates: pl.Series) -> tuple[np.ndarray, np.ndarray]:
        """(codes, keys): key = code * 2^32 + day number, ordered like (symbol, date)."""
        codes = symbols.replace_strict(self.mapping, default=-1, return_dtype=pl.Int64).to_numpy()
        days = dates.cast(pl.Date).cast(pl.Int64).to_numpy()
        return codes, codes * (1 << 32) + (days + (1 << 31))

    def previous_close(self, symbols: pl.Series, dates: pl.Series) -> tuple[np.ndarray, pl.Series]:
        """(found, close): raw close of each (symbol, date)'s last bar strictly before date.

        found is False where the symbol has no bar before date (close is then meaningless);
        a null close in the bars stays null.
        """
        codes, keys = self.encode(symbols, dates)
        if keys.size == 0 or self.sorted_keys.size == 0:
            return np.zeros(keys.size, dtype=bool), pl.Series("close", [None] * keys.size)
        before = np.searchsorted(self.sorted_keys, keys, side="left") - 1
        clamped = np.maximum(before, 0)
        found = (before >= 0) & (self.sorted_codes[clamped] == codes)
        return found, pl.Series("close", self.sorted_close[clamped], dtype=pl.Float64)


def _in_force(index: _BarIndex, cumulative: pl.DataFrame, column: str) -> np.ndarray:
    """Per bar of `index`, `column` of the first row of `cumulative` (symbol, ex_date,
    column: the cumulative factor of actions from that ex_date on) with ex_date after the
    bar's date, i.e. the factor in force on the bar; 1.0 where no action follows."""
    codes, keys = index.encode(cumulative["symbol"], cumulative["ex_date"])
    if keys.size == 0:
        return np.ones(index.keys.size)
    order = np.argsort(keys, kind="stable")
    codes, keys = codes[order], keys[order]
    after = np.searchsorted(keys, index.keys, side="right")  # first action after the bar
    clamped = np.minimum(after, keys.size - 1)
    hit = (after < keys.size) & (codes[clamped] == index.codes)
    return np.where(hit, cumulative[column].to_numpy()[order[clamped]], 1.0)


def _applicable_actions(
    bars: pl.DataFrame, actions: pl.DataFrame, mode: str, as_of: dt.date | None,
    symbols: pl.Series | None = None,
) -> pl.DataFrame:
    """The split/dividend rows of `actions` that `mode` and `as_of` apply to `bars`."""
    types: tuple[str, ...] = ()
    if mode in ("split", "all"):
        types += SPLIT_TYPES
    if mode in ("dividend", "all"):
        types += DIVIDEND_TYPES
    if not types or actions.height == 0:
        return pl.DataFrame()
    missing = [c for c in _REQUIRED_ACTION_COLUMNS if c not in actions.columns]
    if missing:
        raise DataValidationError(f"corporate actions: missing column(s) {', '.join(missing)}")
    chosen = actions.filter(pl.col("action_type").is_in(types))
    _reject(chosen, pl.col("ex_date").is_null(), "has no ex_date")
    chosen = chosen.with_columns(pl.col("ex_date").cast(pl.Date))
    if as_of is not None:
        chosen = chosen.filter(pl.col("ex_date") <= as_of)
    held = bars.get_column("symbol") if symbols is None else symbols
    return chosen.filter(pl.col("symbol").is_in(held.unique().implode()))


def _split_factors(splits: pl.DataFrame) -> pl.DataFrame:
    if splits.height == 0:
        return pl.DataFrame(schema=_FACTOR_SCHEMA)
    _require(splits, ("old_rate", "new_rate"), "split")
    old, new = pl.col("old_rate").cast(pl.Float64), pl.col("new_rate").cast(pl.Float64)
    bad = old.is_null() | new.is_null() | (old <= 0) | (new <= 0) | ~old.is_finite()
    _reject(splits, bad | ~new.is_finite(), "needs positive old_rate and new_rate")
    return splits.select(
        "symbol",
        "ex_date",
        (old / new).alias("price_factor"),
        (new / old).alias("volume_factor"),
    )


def _dividend_factors(index: _BarIndex, dividends: pl.DataFrame) -> pl.DataFrame:
    if dividends.height == 0:
        return pl.DataFrame(schema=_FACTOR_SCHEMA)
    _require(dividends, ("cash_rate",), "dividend")
    cash = pl.col("cash_rate").cast(pl.Float64)
    _reject(dividends, cash.is_null() | (cash < 0) | ~cash.is_finite(), "needs cash_rate >= 0")
    found, close_before = index.previous_close(dividends["symbol"], dividends["ex_date"])
    # A dividend with no earlier bar of its symbol affects no row.
    prior = dividends.with_columns(close_before.cast(pl.Float64)).filter(pl.Series(found))
    close = pl.col("close")
    _reject(
        prior,
        close.is_null() | (close <= 0) | (cash >= close),
        "needs a positive prior raw close larger than cash_rate",
    )
    return prior.select(
        "symbol",
        "ex_date",
        (1.0 - cash / close).alias("price_factor"),
        pl.lit(1.0).alias("volume_factor"),
    )


def _check_bars(bars: pl.DataFrame, required: tuple[str, ...] = _REQUIRED_BAR_COLUMNS) -> None:
    missing = [c for c in required if c not in bars.columns]
    if missing:
        raise DataValidationError(f"bars: missing column(s) {', '.join(missing)}")


def _require(frame: pl.DataFrame, columns: tuple[str, ...], kind: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"corporate actions: {kind} rows need column(s) {', '.join(missing)}"
        )


def _reject(frame: pl.DataFrame, bad: pl.Expr, problem: str) -> None:
    """Raise DataValidationError naming the first action for which `bad` holds."""
    offenders = frame.filter(bad.fill_null(True))
    if offenders.height:
        row = offenders.row(0, named=True)
        raise DataValidationError(
            f"corporate action {row.get('id')!r} ({row.get('action_type', 'dividend')} "
            f"{row.get('symbol')} ex_date {row.get('ex_date')}) {problem}"
        )
