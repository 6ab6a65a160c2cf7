"""Column schemas shared by every stage: the contracts of the store's Parquet files.

`PRICES_SCHEMA` is prices.parquet (and the synthetic market's raw bars): one row per
(symbol, NY session date), prices in USD per share, volume in shares (float64 because
split-adjusted volumes can be fractional), vwap/trade_count nullable.

`CORPORATE_ACTIONS_SCHEMA` is corporate_actions.parquet. `symbol` is the symbol the action
applies to (the NEW symbol for a name_change); `ex_date` is the first session the action is
in effect; `old_rate`/`new_rate` only for splits (2-for-1: 1 -> 2); `cash_rate` only for
cash dividends (USD per share).
"""

from __future__ import annotations

import polars as pl

PRICES_SCHEMA: dict[str, pl.DataType] = {
    "date": pl.Date(),
    "symbol": pl.String(),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
    "vwap": pl.Float64(),
    "trade_count": pl.Int64(),
}
PRICE_COLUMNS: list[str] = list(PRICES_SCHEMA)

CORPORATE_ACTIONS_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.String(),
    "action_type": pl.String(),
    "symbol": pl.String(),
    "old_symbol": pl.String(),
    "ex_date": pl.Date(),
    "process_date": pl.Date(),
    "old_rate": pl.Float64(),
    "new_rate": pl.Float64(),
    "cash_rate": pl.Float64(),
}
