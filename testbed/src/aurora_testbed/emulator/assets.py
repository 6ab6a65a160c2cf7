"""The emulated market's assets: what the trading API's `/v2/assets` lists (§6).

An `Asset` is one row: symbol, status (`active` or `inactive`), tradable, and the fields
derived from them (name, exchange, class). `MarketData` holds explicit rows, or derives
them from its bars and actions (`derive_assets`):
- every symbol with bars is active and tradable,
- except a symbol whose last bar is more than `DELISTED_AFTER_SESSIONS` (5) sessions
  before the market's last bar date: inactive, not tradable (delisted);
- and the old symbol of a `name_change`: inactive, not tradable (renamed away).
`with_assets` / `MarketData.with_status` replace or add rows, e.g. an active symbol that is
not tradable (closing trades only, usually after a delisting to OTC). Exchanges and names
are derived deterministically from the symbol (the shared schema has neither).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import polars as pl

from aurora.calendar import sessions
from aurora.errors import DataValidationError

DELISTED_AFTER_SESSIONS = 5
ASSET_CLASSES = ("us_equity", "us_option", "crypto", "crypto_perp")
EXCHANGES = ("AMEX", "ARCA", "BATS", "NYSE", "NASDAQ", "NYSEARCA", "OTC")
_LISTED_ON = ("NASDAQ", "NYSE")  # where a derived asset is listed
Status = Literal["active", "inactive"]


def listed_exchange(symbol: str) -> str:
    """A stable exchange for `symbol` (NASDAQ or NYSE, hashed from the symbol)."""
    return _LISTED_ON[hashlib.sha256(symbol.encode()).digest()[0] % len(_LISTED_ON)]


@dataclass(frozen=True)
class Asset:
    """One asset row. `exchange` and `name` default to values derived from the symbol."""

    symbol: str
    status: Status = "active"
    tradable: bool = True
    exchange: str | None = None
    name: str | None = None
    asset_class: str = "us_equity"
    attributes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        symbol = self.symbol.strip().upper()
        if not symbol:
            raise DataValidationError("an asset has an empty symbol")
        if self.status not in ("active", "inactive"):
            raise DataValidationError(f"asset {symbol}: status must be active or inactive "
                                      f"(got {self.status!r})")
        if self.asset_class not in ASSET_CLASSES:
            raise DataValidationError(f"asset {symbol}: unknown class {self.asset_class!r}")
        exchange = self.exchange or listed_exchange(symbol)
        if exchange not in EXCHANGES:
            raise DataValidationError(f"asset {symbol}: unknown exchange {exchange!r}")
        object.__setattr__(self, "symbol", symbol)
        object.__setattr__(self, "exchange", exchange)
        object.__setattr__(self, "name", self.name or f"{symbol} Emulated Inc. Common Stock")


def sort_assets(assets: Iterable[Asset]) -> tuple[Asset, ...]:
    """Rows in Alpaca's order: class, exchange, symbol. DataValidationError when a symbol
    of one class is given twice."""
    rows = tuple(sorted(assets, key=lambda a: (a.asset_class, a.exchange or "", a.symbol)))
    seen: set[tuple[str, str]] = set()
    for row in rows:
        key = (row.asset_class, row.symbol)
        if key in seen:
            raise DataValidationError(f"asset {row.symbol} is listed twice")
        seen.add(key)
    return rows


def derive_assets(bars: pl.DataFrame, actions: pl.DataFrame) -> tuple[Asset, ...]:
    """The rows of a market without explicit ones (module docstring)."""
    if bars.height == 0:
        return ()
    lasts = bars.group_by("symbol").agg(pl.col("date").max()).sort("symbol")
    market_last = lasts.get_column("date").max()
    calendar = pl.Series(sessions(bars.get_column("date").min(), market_last), dtype=pl.Date)
    behind = len(calendar) - calendar.search_sorted(lasts.get_column("date"), side="right")
    renamed = set(actions.filter(pl.col("action_type") == "name_change")
                  .get_column("old_symbol").drop_nulls().to_list())
    rows = []
    for symbol, late in zip(lasts.get_column("symbol"), behind, strict=True):
        active = late <= DELISTED_AFTER_SESSIONS and symbol not in renamed
        rows.append(Asset(symbol, "active" if active else "inactive", tradable=active))
    return sort_assets(rows)


def with_assets(current: Iterable[Asset], rows: Iterable[Asset]) -> tuple[Asset, ...]:
    """`current` with `rows` replacing those of the same class and symbol, or added."""
    changed = {(a.asset_class, a.symbol): a for a in rows}
    kept = [a for a in current if (a.asset_class, a.symbol) not in changed]
    return sort_assets([*kept, *changed.values()])
