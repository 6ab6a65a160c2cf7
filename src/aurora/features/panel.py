"""Check the build's inputs and derive the per-symbol tables the wide panel needs.

`check_prices` and `session_grid` give the row-level error messages (file, symbol, date) for
bad bars; `sector_frame` maps symbols to sectors; `shares_table` puts shares outstanding on
the volume's adjustment basis, point in time from `as_of`. `wide.align_wide` assembles them
into the (symbols x sessions) matrices the features are computed on.

Bad input (duplicate keys, a bar on a non-session, a non-positive or non-finite price, an
implausible market cap) raises DataValidationError naming the file, symbol and date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from aurora.calendar import sessions
from aurora.errors import DataValidationError
from aurora.schemas import BAR_COLUMNS, PRICE_COLUMNS, SPLIT_TYPES, require_unique_keys
from aurora.universe import default_sectors

UNKNOWN_SECTOR = "Unknown"
# No listed company is worth USD 100 trillion, and none in an equity universe under USD 1M:
# a value outside this range is a unit error (e.g. billions stored as USD or the reverse).
MARKET_CAP_RANGE = (1e6, 1e14)


@dataclass
class PanelInfo:
    """What the alignment did, for the build report and metadata."""

    unknown_sector: list[str] = field(default_factory=list)
    sector_source: str = "given"
    shares_source: str = "none"
    missing_bars: int = 0
    grid_rows: int = 0


def _fail(source: str, problem: str, rows: pl.DataFrame, cols: tuple[str, ...]) -> None:
    first = rows.row(0, named=True)
    where = ", ".join(f"{c}={first[c]}" for c in cols)
    more = f" (and {rows.height - 1} more row(s))" if rows.height > 1 else ""
    raise DataValidationError(f"{source}: {problem} at {where}{more}")


def bar_values_ok() -> pl.Expr:
    """True for a bar whose prices are positive and finite and whose volume is finite and
    non-negative (nulls allowed: a missing value is not a wrong one)."""
    prices_ok = pl.all_horizontal(
        [((pl.col(c) > 0) & pl.col(c).is_finite()) | pl.col(c).is_null() for c in PRICE_COLUMNS])
    volume = pl.col("volume")
    return prices_ok & (((volume >= 0) & volume.is_finite()) | volume.is_null())


def check_prices(prices: pl.DataFrame, source: str = "prices") -> pl.DataFrame:
    """Validate and normalise prices to the store schema's types; returns a new frame."""
    missing = [c for c in ("date", "symbol", *BAR_COLUMNS) if c not in prices.columns]
    if missing:
        raise DataValidationError(f"{source}: missing column(s) {', '.join(missing)}")
    extra = [c for c in ("dollar_volume",) if c in prices.columns]
    frame = prices.select(
        pl.col("date").cast(pl.Date),
        pl.col("symbol").cast(pl.String),
        *[pl.col(c).cast(pl.Float64) for c in (*BAR_COLUMNS, *extra)],
    )
    if frame.height == 0:
        raise DataValidationError(f"{source}: no rows")
    if frame["symbol"].null_count() or frame["date"].null_count():
        bad = frame.filter(pl.col("symbol").is_null() | pl.col("date").is_null())
        _fail(source, "null symbol or date", bad.with_row_index("row"), ("row",))
    frame = frame.sort("symbol", "date")
    require_unique_keys(frame.select("symbol", "date"), source)
    bad = frame.filter(~bar_values_ok())
    if bad.height:
        _fail(source, "non-positive or non-finite price/volume", bad.sort("symbol", "date"),
              ("symbol", "date"))
    return frame


def session_grid(prices: pl.DataFrame, source: str = "prices") -> pl.DataFrame:
    """(symbol, date, _pos) for every NYSE session between each symbol's first and last bar.

    Raises DataValidationError if a bar is dated on a non-session.
    """
    first, last = prices["date"].min(), prices["date"].max()
    assert isinstance(first, dt.date) and isinstance(last, dt.date)
    cal = pl.DataFrame({"date": sessions(first, last)}, schema={"date": pl.Date})
    cal = cal.with_row_index("_idx").with_columns(pl.col("_idx").cast(pl.Int64))
    off = prices.join(cal, on="date", how="anti")
    if off.height:
        _fail(source, "bar on a date that is not an NYSE session", off, ("symbol", "date"))
    spans = (
        prices.join(cal, on="date").group_by("symbol")
        .agg(pl.col("_idx").min().alias("lo"), pl.col("_idx").max().alias("hi"))
    )
    grid = (
        spans.select("symbol", "lo", pl.int_ranges("lo", pl.col("hi") + 1).alias("_idx"))
        .explode("_idx")
        .with_columns((pl.col("_idx") - pl.col("lo")).alias("_pos"))
        .join(cal, on="_idx")
        .select("symbol", "date", "_pos")
        .sort("symbol", "date")
    )
    return grid


def sector_frame(
    sectors: Mapping[str, str] | pl.DataFrame | None, symbols: list[str], info: PanelInfo
) -> pl.DataFrame:
    """symbol -> sector for `symbols`; unknown ones get "Unknown" (recorded in `info`)."""
    if sectors is None:
        sectors = default_sectors()
        info.sector_source = "aurora default sectors (no sector_map.parquet)"
    if isinstance(sectors, pl.DataFrame):
        table = sectors.select(pl.col("symbol").cast(pl.String), pl.col("sector").cast(pl.String))
        table = table.unique("symbol", keep="first")
    else:
        table = pl.DataFrame({"symbol": list(sectors), "sector": list(sectors.values())},
                             schema={"symbol": pl.String, "sector": pl.String})
    out = (
        pl.DataFrame({"symbol": symbols}, schema={"symbol": pl.String})
        .join(table, on="symbol", how="left")
        .with_columns(pl.col("sector").fill_null(UNKNOWN_SECTOR))
    )
    info.unknown_sector = sorted(
        set(symbols) - set(table.filter(pl.col("sector").is_not_null())["symbol"].to_list())
    )
    return out


def _split_factor_upto(fund: pl.DataFrame, actions: pl.DataFrame | None) -> pl.DataFrame:
    """Per (symbol, as_of): product of old_rate/new_rate of the splits with ex_date <= as_of:
    what puts a share count of as_of on the point-in-time volume basis (the symbol's first
    bar's shares, `aurora.adjustments.point_in_time`)."""
    base = fund.select("symbol", "as_of").unique()
    if actions is None or actions.height == 0:
        return base.with_columns(pl.lit(1.0).alias("_split"))
    splits = actions.filter(pl.col("action_type").is_in(SPLIT_TYPES)).select(
        "symbol", "ex_date", (pl.col("old_rate") / pl.col("new_rate")).alias("ratio")
    )
    factor = (
        base.join(splits, on="symbol").filter(pl.col("ex_date") <= pl.col("as_of"))
        .group_by("symbol", "as_of").agg(pl.col("ratio").product().alias("_split"))
    )
    return base.join(factor, on=["symbol", "as_of"], how="left").with_columns(
        pl.col("_split").fill_null(1.0)
    )


def shares_table(
    fundamentals: pl.DataFrame | None,
    prices: pl.DataFrame,
    actions: pl.DataFrame | None,
    info: PanelInfo,
    source: str = "fundamentals",
) -> pl.DataFrame | None:
    """(symbol, as_of, shares) on the point-in-time volume basis, or None when unusable.

    `prices` are adjusted point in time (`aurora.adjustments.point_in_time`: volume in the
    shares of the symbol's first bar, plus `dollar_volume`, raw close x raw volume).
    shares_outstanding (if present) is scaled by the splits up to as_of; otherwise
    market_cap (USD) x volume / dollar_volume of the last session <= as_of with volume, which
    is market_cap / raw close on the same basis without needing the split history.
    """
    if fundamentals is None or fundamentals.height == 0:
        return None
    if not {"symbol", "as_of"} <= set(fundamentals.columns):
        raise DataValidationError(f"{source}: needs columns symbol and as_of")
    fund = fundamentals.with_columns(pl.col("as_of").cast(pl.Date),
                                     pl.col("symbol").cast(pl.String))
    has_shares = "shares_outstanding" in fund.columns
    has_cap = "market_cap" in fund.columns
    if not has_shares and not has_cap:
        return None
    if has_cap:
        lo, hi = MARKET_CAP_RANGE
        cap = pl.col("market_cap").cast(pl.Float64)
        bad = fund.filter(cap.is_not_null() & ~((cap >= lo) & (cap <= hi))).sort("as_of", "symbol")
        if bad.height:
            dates = sorted({str(d) for d in bad["as_of"].to_list()})
            _fail(source, f"implausible market_cap (expected USD between {lo:.0e} and {hi:.0e};"
                  f" a unit error? bad snapshot(s): {', '.join(dates)})", bad,
                  ("symbol", "as_of", "market_cap"))
    parts = []
    if has_shares:
        s = fund.filter(pl.col("shares_outstanding").is_not_null()).select(
            "symbol", "as_of", pl.col("shares_outstanding").cast(pl.Float64).alias("shares"))
        s = s.join(_split_factor_upto(s, actions), on=["symbol", "as_of"]).select(
            "symbol", "as_of", pl.col("shares") * pl.col("_split"))
        parts.append(s)
        info.shares_source = "shares_outstanding"
    if has_cap:
        c = fund.filter(pl.col("market_cap").is_not_null())
        if has_shares:
            c = c.filter(pl.col("shares_outstanding").is_null())
        usd = (pl.col("dollar_volume") if "dollar_volume" in prices.columns
               else pl.col("close") * pl.col("volume"))
        traded = prices.filter((pl.col("volume") > 0) & (usd > 0)).select(
            "symbol", pl.col("date").alias("as_of"),
            (pl.col("volume") / usd).alias("_per_usd")).sort("as_of")
        c = (c.select("symbol", "as_of", pl.col("market_cap").cast(pl.Float64)).sort("as_of")
             .join_asof(traded, on="as_of", by="symbol", strategy="backward",
                       check_sortedness=False)
             .select("symbol", "as_of",
                     (pl.col("market_cap") * pl.col("_per_usd")).alias("shares")))
        parts.append(c)
        info.shares_source = ("shares_outstanding, else market_cap / close"
                              if has_shares else "market_cap / close at as_of")
    table = pl.concat(parts).filter(pl.col("shares").is_not_null() & (pl.col("shares") > 0))
    return table.unique(["symbol", "as_of"], keep="last").sort("as_of")


def bar_spans(prices: pl.DataFrame) -> pl.DataFrame:
    """symbol, first, last: each symbol's first and last bar date in `prices` (what
    `compute_panel(spans=)` needs when it is given only a part of them). Prices stored by
    (symbol, date) hold each symbol in one run of rows: then one pass over the dates."""
    runs = prices.get_column("symbol").rle().struct.unnest()
    dates = prices.get_column("date")
    if prices.height == 0 or runs.height != runs["value"].n_unique() or dates.null_count():
        return prices.group_by("symbol").agg(pl.col("date").min().alias("first"),
                                             pl.col("date").max().alias("last"))
    lengths = runs["len"].to_numpy()
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    days = dates.to_physical().to_numpy()
    return pl.DataFrame({"symbol": runs["value"],
                         "first": pl.Series(np.minimum.reduceat(days, starts)).cast(pl.Date),
                         "last": pl.Series(np.maximum.reduceat(days, starts)).cast(pl.Date)})


def extend_spans(spans: pl.DataFrame, later: pl.DataFrame) -> pl.DataFrame:
    """`spans` (symbol, first, last: `bar_spans` of a history) widened by the bars of
    `later` (prices that may overlap that history): the spans of both together, without
    reading the history again."""
    new = bar_spans(later)
    both = spans.join(new, on="symbol", how="full", coalesce=True, suffix="_later")
    return both.select("symbol", first=pl.min_horizontal("first", "first_later"),
                       last=pl.max_horizontal("last", "last_later"))


def spans_record(spans: pl.DataFrame) -> dict[str, list[str]]:
    """`spans` as JSON-ready columns (ISO dates), sorted by symbol."""
    rows = spans.sort("symbol")
    return {"symbol": rows["symbol"].to_list(),
            "first": rows["first"].cast(pl.String).to_list(),
            "last": rows["last"].cast(pl.String).to_list()}


def spans_from_record(record: object) -> pl.DataFrame | None:
    """The frame `spans_record` wrote, or None when `record` is not one (an older build's
    meta): the caller then reads the spans from the prices."""
    if not isinstance(record, dict) or set(record) != {"symbol", "first", "last"}:
        return None
    try:
        spans = pl.DataFrame(record, schema={"symbol": pl.String, "first": pl.String,
                                             "last": pl.String}).select(
            "symbol", pl.col("first").str.to_date(), pl.col("last").str.to_date())
    except (pl.exceptions.PolarsError, TypeError, ValueError):
        return None
    return None if spans.null_count().sum_horizontal().item() else spans
