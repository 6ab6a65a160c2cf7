"""The immutable market the emulator serves: raw daily bars, corporate actions, assets.

Bars follow the shared prices schema (date, symbol, open, high, low, close, volume, vwap,
trade_count); `vwap` and `trade_count` may be absent entirely (then bars carry no `vw`/`n`).
Bars are RAW (as traded, under the symbol in use on that date); the server applies
adjustments and rename mapping per request. Corporate actions follow the shared schema
(id, action_type, symbol, old_symbol, ex_date, process_date, old_rate, new_rate, cash_rate).
Assets (the trading API's `/v2/assets`) are explicit rows or derived from the bars and
actions (`aurora_testbed.emulator.assets`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import polars as pl

from aurora.errors import DataValidationError
from aurora.schemas import CORPORATE_ACTIONS_SCHEMA
from aurora_testbed.emulator.assets import Asset, Status, derive_assets, sort_assets, with_assets

BAR_REQUIRED = ("date", "symbol", "open", "high", "low", "close", "volume")
BAR_OPTIONAL = ("vwap", "trade_count")
ACTIONS_SCHEMA = CORPORATE_ACTIONS_SCHEMA
ACTION_TYPES = ("forward_split", "reverse_split", "cash_dividend", "name_change")


def empty_actions() -> pl.DataFrame:
    """A corporate-actions frame with the shared schema and no rows."""
    return pl.DataFrame(schema=ACTIONS_SCHEMA)


def _normalise_bars(bars: pl.DataFrame, source: str) -> pl.DataFrame:
    missing = [c for c in BAR_REQUIRED if c not in bars.columns]
    if missing:
        raise DataValidationError(f"{source}: bars lack column(s) {', '.join(missing)}")
    try:
        cols = [
            pl.col("date").cast(pl.Date),
            pl.col("symbol").cast(pl.String),
            *(pl.col(c).cast(pl.Float64) for c in ("open", "high", "low", "close", "volume")),
        ]
        if "vwap" in bars.columns:
            cols.append(pl.col("vwap").cast(pl.Float64))
        if "trade_count" in bars.columns:
            cols.append(pl.col("trade_count").cast(pl.Int64))
        out = bars.select(cols)
    except pl.exceptions.PolarsError as exc:
        raise DataValidationError(f"{source}: bars have an unusable column type ({exc})") from None
    nulls = out.filter(pl.any_horizontal(pl.col(*BAR_REQUIRED).is_null()))
    if nulls.height:
        row = nulls.row(0, named=True)
        raise DataValidationError(
            f"{source}: {nulls.height} bar(s) with a missing value, first "
            f"{row['symbol']} {row['date']} (the API never serves null prices)"
        )
    dupes = out.group_by("symbol", "date").len().filter(pl.col("len") > 1)
    if dupes.height:
        row = dupes.sort("symbol", "date").row(0, named=True)
        raise DataValidationError(
            f"{source}: duplicate bar for {row['symbol']} {row['date']} "
            f"({dupes.height} duplicated (symbol, date) pair(s))"
        )
    return out.sort("symbol", "date")


def _normalise_actions(actions: pl.DataFrame | None, source: str) -> pl.DataFrame:
    if actions is None or actions.height == 0:
        return empty_actions()
    missing = [c for c in ACTIONS_SCHEMA if c not in actions.columns]
    if missing:
        raise DataValidationError(
            f"{source}: corporate actions lack column(s) {', '.join(missing)}"
        )
    out = actions.select(pl.col(c).cast(t) for c, t in ACTIONS_SCHEMA.items())
    bad = out.filter(~pl.col("action_type").is_in(ACTION_TYPES))
    if bad.height:
        row = bad.row(0, named=True)
        raise DataValidationError(
            f"{source}: corporate action {row['id']} has unknown type {row['action_type']!r}"
        )
    renames = out.filter(pl.col("action_type") == "name_change")
    if renames.filter(pl.col("old_symbol").is_null()).height:
        raise DataValidationError(f"{source}: a name_change action has no old_symbol")
    if out.filter(pl.col("ex_date").is_null() | pl.col("process_date").is_null()).height:
        raise DataValidationError(f"{source}: a corporate action has no ex_date/process_date")
    return out.sort("process_date", "action_type", "symbol", "id")


@dataclass(frozen=True, init=False)
class MarketData:
    """Raw daily bars and corporate actions, validated and sorted (symbol, date), and the
    assets the trading API lists: `explicit_assets` when given, else derived (`assets`).

    Raises DataValidationError naming the source and the first bad row for missing columns,
    null prices, duplicate (symbol, date) bars, malformed actions or an asset listed twice.
    Nothing is dropped.
    """

    bars: pl.DataFrame
    corporate_actions: pl.DataFrame
    explicit_assets: tuple[Asset, ...] | None

    def __init__(self, bars: pl.DataFrame, corporate_actions: pl.DataFrame | None = None,
                 *, source: str = "market data", assets: Iterable[Asset] | None = None) -> None:
        object.__setattr__(self, "bars", _normalise_bars(bars, source))
        object.__setattr__(self, "corporate_actions",
                           _normalise_actions(corporate_actions, source))
        object.__setattr__(self, "explicit_assets",
                           None if assets is None else sort_assets(assets))

    @cached_property
    def assets(self) -> tuple[Asset, ...]:
        """The asset rows, sorted by class, exchange and symbol: the explicit ones, else
        derived from the bars and actions (`aurora_testbed.emulator.assets`)."""
        if self.explicit_assets is not None:
            return self.explicit_assets
        return derive_assets(self.bars, self.corporate_actions)

    def with_assets(self, *rows: Asset) -> MarketData:
        """This market with `rows` replacing the asset rows of their symbols (or added);
        the other rows stay as they are (explicit or derived)."""
        out = object.__new__(MarketData)
        object.__setattr__(out, "bars", self.bars)
        object.__setattr__(out, "corporate_actions", self.corporate_actions)
        object.__setattr__(out, "explicit_assets", with_assets(self.assets, rows))
        return out

    def with_status(self, *symbols: str, status: Status = "active",
                    tradable: bool = False) -> MarketData:
        """This market with `symbols` (us_equity) listed as `status` and `tradable`, their
        other fields kept; by default active but not tradable (closing trades only, after a
        delisting to OTC): `market.with_status("XYZ")`."""
        rows = {a.symbol: a for a in self.assets if a.asset_class == "us_equity"}
        return self.with_assets(*(
            replace(rows[s], status=status, tradable=tradable) if s in rows
            else Asset(s, status, tradable) for s in (s.strip().upper() for s in symbols)))

    @property
    def has_vwap(self) -> bool:
        return "vwap" in self.bars.columns

    @property
    def has_trade_count(self) -> bool:
        return "trade_count" in self.bars.columns

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self.bars.get_column("symbol").unique().sort().to_list())

    @classmethod
    def from_parquet(cls, path: Path | str, actions_path: Path | str | None = None) -> MarketData:
        """Load bars (extra columns ignored, vwap/trade_count optional) and optional actions."""
        path = Path(path)
        if not path.is_file():
            raise DataValidationError(f"{path}: bars file not found")
        try:
            bars = pl.read_parquet(path)
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise DataValidationError(f"{path}: not a readable Parquet file ({exc})") from None
        actions = None
        if actions_path is not None:
            actions_path = Path(actions_path)
            if not actions_path.is_file():
                raise DataValidationError(f"{actions_path}: corporate actions file not found")
            try:
                actions = pl.read_parquet(actions_path)
            except (OSError, pl.exceptions.PolarsError) as exc:
                raise DataValidationError(
                    f"{actions_path}: not a readable Parquet file ({exc})"
                ) from None
        return cls(bars, actions, source=str(path))

    @classmethod
    def synthetic(cls, symbols: Iterable[str], start: dt.date, end: dt.date,
                  seed: int = 7) -> MarketData:
        """The deterministic synthetic market of `aurora_testbed.synthetic.generate_market`."""
        from aurora_testbed.synthetic import generate_market

        market = generate_market(list(symbols), start, end, seed=seed)
        return cls(market.bars, market.corporate_actions, source="synthetic market")
