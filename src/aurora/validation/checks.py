"""Row-level checks of a price frame: schema, nulls, coverage, duplicates, bar values.

Every check is a pure, vectorised function of a polars frame that returns a list of
`Finding`s with the check's default severity (`CHECKS`); `validate_prices` applies the
configured severities. Checks other than `check_schema` expect the canonical dtypes (see
`PRICE_SCHEMA`); `validate_prices` only calls them when the schema allows it. Findings are
grouped per symbol and carry every offending date; rows whose symbol is null are reported
under symbol None.

Time-series checks (sessions, moves, stale runs) are in `aurora.validation.series`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

from aurora.schemas import (
    BAR_COLUMNS,
    PRICE_COLUMNS,
    PRICES_SCHEMA,
    find_duplicate_keys,
    non_finite,
)
from aurora.validation.findings import CHECKS, Finding, format_dates

OPTIONAL_COLUMNS = ("vwap", "trade_count")
PRICE_SCHEMA = {k: v for k, v in PRICES_SCHEMA.items() if k not in OPTIONAL_COLUMNS}
OPTIONAL_SCHEMA = {k: PRICES_SCHEMA[k] for k in OPTIONAL_COLUMNS}
# Relative slack for OHLC ordering: absorbs float rounding of adjusted prices, nothing more.
OHLC_TOLERANCE = 1e-9

Describe = Callable[[str | None, tuple[dt.date, ...], dict[str, Any]], str]


def finding(
    check: str, message: str, symbol: str | None = None,
    dates: Sequence[dt.date] = (), count: int | None = None,
) -> Finding:
    """A Finding with the check's default severity; count defaults to len(dates) or 1."""
    dates = tuple(dates)
    return Finding(
        check=check, severity=CHECKS[check], message=message, symbol=symbol,
        dates=dates, count=count if count is not None else (len(dates) or 1),
    )


def per_symbol(
    flagged: pl.DataFrame, check: str, describe: Describe, **aggs: pl.Expr
) -> list[Finding]:
    """One finding per symbol of `flagged` (rows already known to be bad).

    `aggs` are extra per-symbol aggregations passed to `describe(symbol, dates, values)`;
    the finding's count is the number of flagged rows (null dates are counted, not listed).
    """
    if flagged.height == 0:
        return []
    grouped = (
        flagged.group_by("symbol")
        .agg(pl.col("date").drop_nulls().unique().sort().alias("_dates"),
             pl.len().alias("_rows"), **aggs)
        .sort("symbol", nulls_last=True)
    )
    out = []
    for row in grouped.iter_rows(named=True):
        dates = tuple(row.pop("_dates"))
        rows = row.pop("_rows")
        symbol = row.pop("symbol")
        out.append(finding(check, describe(symbol, dates, row), symbol, dates, count=rows))
    return out


def sort_bars(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` sorted by symbol then date (returned as is when it already is)."""
    if frame.height < 2:
        return frame
    sym, date = pl.col("symbol"), pl.col("date")
    out_of_order = frame.select(
        ((sym < sym.shift(1)) | ((sym == sym.shift(1)) & (date < date.shift(1)))).any()
    ).item()
    has_nulls = frame.select(sym.is_null().any() | date.is_null().any()).item()
    if not (out_of_order or has_nulls):
        return frame
    # Sorting on two keys, one a string, is ~10x slower than on one integer key built from
    # the symbol's rank and the day number (nulls last).
    names = frame["symbol"].drop_nulls().unique().sort()
    code = frame["symbol"].cast(pl.Enum(names.to_list())).to_physical().cast(pl.Int64)
    day = frame["date"].cast(pl.Int32).cast(pl.Int64) + (1 << 31)
    key = code.fill_null(names.len()) * (1 << 33) + day.fill_null((1 << 32) + 1)
    return frame[key.arg_sort()]


def valid_values() -> pl.Expr:
    """True on rows whose OHLC and volume are all present and finite."""
    return pl.all_horizontal(
        [pl.col(c).is_not_null() & pl.col(c).is_finite() for c in BAR_COLUMNS]
    )


# -- schema -------------------------------------------------------------------------------
def check_schema(frame: pl.DataFrame) -> list[Finding]:
    """Required columns present with the contract dtypes; known optional columns typed right.

    Extra columns (vwap, trade_count, adj_close, ...) are allowed.
    """
    out = []
    missing = [c for c in PRICE_SCHEMA if c not in frame.columns]
    if missing:
        out.append(finding("schema", f"missing required column(s): {', '.join(missing)}",
                           count=len(missing)))
    expected = {**PRICE_SCHEMA, **OPTIONAL_SCHEMA}
    for name, dtype in expected.items():
        have = frame.schema.get(name)
        if have is not None and have != dtype:
            kind = " (not numeric)" if dtype.is_numeric() and not have.is_numeric() else ""
            out.append(finding(
                "schema", f"column {name} has dtype {have}, expected {dtype}{kind}"))
    return out


def coerce(frame: pl.DataFrame) -> tuple[pl.DataFrame | None, list[str]]:
    """Cast required columns to the contract dtypes where that is lossless enough to check.

    Integers become Float64, Datetime becomes Date, Categorical becomes String. An optional
    column (vwap, trade_count) of another dtype is cast when that is as lossless (numbers to
    Float64, integers to Int64) and left out of the checks otherwise (a String vwap). Returns
    (frame, []) or (None, [columns that are missing or cannot be cast]); the caller reports
    the schema problems themselves through `check_schema`.
    """
    bad = [c for c in PRICE_SCHEMA if c not in frame.columns]
    casts = []
    for name, dtype in PRICE_SCHEMA.items():
        if name in bad or frame.schema[name] == dtype:
            continue
        have = frame.schema[name]
        ok = (
            (dtype == pl.Float64 and (have.is_numeric()))
            or (name == "date" and isinstance(have, pl.Datetime))
            or (name == "symbol" and isinstance(have, pl.Categorical | pl.Enum))
        )
        if ok:
            casts.append(pl.col(name).cast(dtype))
        else:
            bad.append(name)
    if bad:
        return None, bad
    drop = []
    for name, dtype in OPTIONAL_SCHEMA.items():
        have = frame.schema.get(name)
        if have is None or have == dtype:
            continue
        if (dtype.is_float() and have.is_numeric()) or (dtype.is_integer()
                                                        and have.is_integer()):
            casts.append(pl.col(name).cast(dtype))
        else:
            drop.append(name)
    frame = frame.drop(drop) if drop else frame
    return (frame.with_columns(casts) if casts else frame), []


def check_nulls(frame: pl.DataFrame) -> list[Finding]:
    """Nulls in required columns, one finding per symbol naming the columns and dates."""
    cols = list(PRICE_SCHEMA)
    flagged = frame.filter(pl.any_horizontal([pl.col(c).is_null() for c in cols]))
    aggs = {f"n_{c}": pl.col(c).is_null().sum() for c in cols}

    def describe(symbol: str | None, dates: tuple[dt.date, ...], v: dict[str, Any]) -> str:
        where = ", ".join(f"{c} ({v['n_' + c]})" for c in cols if v["n_" + c])
        undated = f"; {v['n_date']} row(s) without a date" if v["n_date"] else ""
        return f"nulls in {where}" + (f" on {format_dates(dates)}" if dates else "") + undated

    return per_symbol(flagged, "nulls", describe, **aggs)


def check_non_finite(frame: pl.DataFrame) -> list[Finding]:
    """NaN or +/-inf in prices, volume (or vwap when present), per symbol with dates."""
    cols = [c for c in (*BAR_COLUMNS, "vwap") if c in frame.columns]
    bad = {c: non_finite(c) for c in cols}
    flagged = frame.filter(pl.any_horizontal(list(bad.values())))
    aggs = {c: expr.sum() for c, expr in bad.items()}

    def describe(symbol: str | None, dates: tuple[dt.date, ...], v: dict[str, Any]) -> str:
        where = ", ".join(f"{c} ({v[c]})" for c in cols if v[c])
        return f"NaN/inf in {where} on {format_dates(dates)}"

    return per_symbol(flagged, "non_finite", describe, **aggs)


# -- coverage and keys --------------------------------------------------------------------
def check_coverage(frame: pl.DataFrame, universe: Sequence[str]) -> list[Finding]:
    """Universe symbols without any bar (error) and symbols outside the universe (warning)."""
    present = frame.group_by("symbol").agg(
        pl.len().alias("rows"), pl.col("date").min().alias("first"),
        pl.col("date").max().alias("last"),
    ).drop_nulls("symbol")
    have = set(present["symbol"].to_list())
    wanted = list(dict.fromkeys(universe))
    out = [
        finding("missing_symbols", "universe symbol has no bars", symbol, count=1)
        for symbol in wanted if symbol not in have
    ]
    extra = present.filter(~pl.col("symbol").is_in(pl.Series(wanted, dtype=pl.String).implode()))
    for row in extra.sort("symbol").iter_rows(named=True):
        out.append(finding(
            "unexpected_symbols",
            f"{row['rows']} bar(s) {row['first']}..{row['last']} for a symbol not in the universe",
            row["symbol"], count=row["rows"],
        ))
    return out


def check_duplicates(frame: pl.DataFrame) -> list[Finding]:
    """Duplicate (symbol, date) keys, per symbol; count is the number of surplus rows."""
    duplicates = find_duplicate_keys(frame)
    if duplicates is None:
        return []
    out = []
    for row in (duplicates.groups.group_by("symbol")
                .agg(pl.col("date").sort(), (pl.col("rows") - 1).sum().alias("surplus"))
                .sort("symbol", nulls_last=True).iter_rows(named=True)):
        dates = tuple(d for d in row["date"] if d is not None)
        out.append(finding(
            "duplicates",
            f"{row['surplus']} duplicate row(s) on {format_dates(dates) or 'null dates'}",
            row["symbol"], dates, count=row["surplus"],
        ))
    return out


# -- bar values ---------------------------------------------------------------------------
def check_non_positive_prices(frame: pl.DataFrame) -> list[Finding]:
    """Open, high, low or close <= 0 (finite values only; NaN is `non_finite`)."""
    bad = {c: pl.col(c).is_finite() & (pl.col(c) <= 0) for c in PRICE_COLUMNS}
    flagged = frame.filter(pl.any_horizontal(list(bad.values())))

    def describe(symbol: str | None, dates: tuple[dt.date, ...], v: dict[str, Any]) -> str:
        where = ", ".join(f"{c} ({v[c]})" for c in PRICE_COLUMNS if v[c])
        return f"non-positive {where} on {format_dates(dates)}"

    return per_symbol(flagged, "non_positive_prices", describe,
                      **{c: e.sum() for c, e in bad.items()})


def check_ohlc(frame: pl.DataFrame) -> list[Finding]:
    """high >= max(open, close), low <= min(open, close), high >= low on fully valid bars."""
    o, h, lo, c = (pl.col(x) for x in PRICE_COLUMNS)
    slack = OHLC_TOLERANCE * h.abs()
    bad = (
        (h < pl.max_horizontal(o, c) - slack)
        | (lo > pl.min_horizontal(o, c) + slack)
        | (h < lo - slack)
    )
    flagged = frame.filter(valid_values() & bad)
    first = pl.struct("date", *PRICE_COLUMNS).sort_by("date").first()

    def describe(symbol: str | None, dates: tuple[dt.date, ...], v: dict[str, Any]) -> str:
        b = v["first_bar"]
        return (f"OHLC inconsistent on {format_dates(dates)} (first: {b['date']} "
                f"o={b['open']:g} h={b['high']:g} l={b['low']:g} c={b['close']:g})")

    return per_symbol(flagged, "ohlc_inconsistent", describe, first_bar=first)


def check_negative_volume(frame: pl.DataFrame) -> list[Finding]:
    """volume < 0."""
    flagged = frame.filter(pl.col("volume").is_finite() & (pl.col("volume") < 0))

    def describe(symbol: str | None, dates: tuple[dt.date, ...], v: dict[str, Any]) -> str:
        return f"negative volume (min {v['lowest']:g}) on {format_dates(dates)}"

    return per_symbol(flagged, "negative_volume", describe, lowest=pl.col("volume").min())
