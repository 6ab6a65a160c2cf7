"""The bars routes: `/v2/stocks/bars`, `/v2/stocks/{symbol}/bars` and the latest-bar routes.

Handlers take the parsed query parameters and a `RequestContext` and return a JSON-ready
dict, or raise ParamError (HTTP 400) / NotFound (HTTP 404). Paging is keyset-based on
(symbol, t): symbols in lexical order, bars by t ascending (or descending with sort=desc),
`limit` counted across all symbols, symbols straddling pages.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from aurora.calendar import is_session, last_completed_session
from aurora_testbed.emulator.faults import FaultPlan
from aurora_testbed.emulator.pagination import decode_token, encode_token, fingerprint
from aurora_testbed.emulator.params import (
    DEFAULT_BARS_LIMIT,
    FEEDS,
    MAX_BARS_LIMIT,
    ParamError,
    Timeframe,
    datetime_to_ns,
    ny_date,
    ny_midnight_ns,
    parse_adjustment,
    parse_asof,
    parse_choice,
    parse_currency,
    parse_limit,
    parse_single_symbol,
    parse_symbols,
    parse_time,
    parse_timeframe,
    present,
)
from aurora_testbed.emulator.series import SeriesCache, SeriesSpec

DAY = Timeframe(1, "Day")
_FINGERPRINTED = ("timeframe", "start", "end", "adjustment", "feed", "asof", "sort", "currency")


class NotFound(LookupError):
    """A resource that does not exist (HTTP 404 with the message)."""


@dataclass(frozen=True)
class RequestContext:
    """What a handler needs besides the query: data, fake now, request number, faults."""

    cache: SeriesCache
    now: dt.datetime
    number: int
    faults: FaultPlan


@dataclass(frozen=True)
class BarsQuery:
    symbols: tuple[str, ...]
    spec: SeriesSpec
    start_ns: int
    end_ns: int
    limit: int
    descending: bool
    after: list[Any] | None
    query_fingerprint: str


def ns_date(ns: int) -> dt.date:
    """The New York date of an instant in nanoseconds since the epoch."""
    return ny_date(dt.datetime.fromtimestamp(ns / 1e9, dt.UTC))


def parse_bars_query(route: str, params: Mapping[str, str], ctx: RequestContext,
                     symbols: tuple[str, ...]) -> BarsQuery:
    """Validate every bars parameter (400 on the first bad one) and resolve defaults."""
    today = ny_date(ctx.now)
    timeframe = parse_timeframe(params.get("timeframe"))
    start = present(params.get("start"))
    end = present(params.get("end"))
    start_ns = parse_time("start", start) if start else ny_midnight_ns(today)
    end_ns = parse_time("end", end) if end else datetime_to_ns(ctx.now)
    if start_ns > end_ns:
        raise ParamError("end should not be before start")
    limit = parse_limit(params.get("limit"), default=DEFAULT_BARS_LIMIT, maximum=MAX_BARS_LIMIT)
    adjustment = parse_adjustment(params.get("adjustment"))
    feed = parse_choice("feed", params.get("feed"), FEEDS, "sip")
    sort = parse_choice("sort", params.get("sort"), ("asc", "desc"), "asc")
    asof = parse_asof(params.get("asof"), today)
    parse_currency(params.get("currency"))
    last_session, days = last_completed_session(ctx.now), None
    if timeframe.intraday:  # today's minutes so far are served; the window bounds the work
        last_session = today if is_session(today) else last_session
        days = (ns_date(start_ns), ns_date(end_ns))
    spec = SeriesSpec(
        symbols=symbols, asof=asof, feed=feed, adjustment=adjustment, timeframe=timeframe,
        revisions=ctx.faults.revisions_for(ctx.number),
        last_session=last_session, today=today, days=days,
    )
    canonical = {name: present(params.get(name)) or "" for name in _FINGERPRINTED}
    canonical["symbols"] = ",".join(symbols)
    query_fp = fingerprint(route, canonical)
    token = present(params.get("page_token"))
    after = decode_token(token, query_fp) if token is not None else None
    if after is not None and (len(after) != 2 or not isinstance(after[1], int)):
        raise ParamError("invalid page_token")
    if timeframe.intraday:  # only bars whose interval has ended by now
        end_ns = min(end_ns, datetime_to_ns(ctx.now) - timeframe.minutes * 60 * 10**9)
    return BarsQuery(symbols, spec, start_ns, end_ns, limit, sort == "desc", after, query_fp)


def _page(query: BarsQuery, ctx: RequestContext) -> tuple[pl.DataFrame, str | None]:
    """The rows of this page and the next token (None on the last page)."""
    series = ctx.cache.get(query.spec)
    rows = series.filter((pl.col("t") >= query.start_ns) & (pl.col("t") <= query.end_ns))
    if query.descending:
        rows = rows.sort(["symbol", "t"], descending=[False, True])
    if query.after is not None:
        symbol, t = query.after
        later = pl.col("t") < t if query.descending else pl.col("t") > t
        rows = rows.filter((pl.col("symbol") > symbol) | ((pl.col("symbol") == symbol) & later))
    window = rows.head(query.limit + 1)
    page = window.head(query.limit)
    more = window.height > query.limit
    full = page.height == query.limit and ctx.faults.full_page_token
    if page.height and (more or full):
        last = page.row(page.height - 1, named=True)
        return page, encode_token([last["symbol"], last["t"]], query.query_fingerprint)
    return page, None


def render_bars(page: pl.DataFrame, lenient: bool) -> dict[str, list[dict[str, Any]]]:
    """Bar objects grouped by symbol in page order: t o h l c v n vw (`v`, `n` integers)."""
    cols = [
        "symbol",
        pl.from_epoch("t", time_unit="ns").dt.strftime("%Y-%m-%dT%H:%M:%SZ").alias("t"),
        "open", "high", "low", "close",
        pl.col("volume").round(0).cast(pl.Int64).alias("volume"),
        (pl.col("trade_count").round(0).cast(pl.Int64) if "trade_count" in page.columns
         else pl.lit(None, pl.Int64)).alias("trade_count"),
        (pl.col("vwap") if "vwap" in page.columns else pl.lit(None, pl.Float64)).alias("vwap"),
    ]
    out: dict[str, list[dict[str, Any]]] = {}
    for symbol, t, o, h, low, c, v, n, vw in page.select(cols).iter_rows():
        bar: dict[str, Any] = {"t": t, "o": o, "h": h, "l": low, "c": c, "v": v}
        if lenient:
            bar["x"] = "emulator"
            bar["unknown_field"] = {"nested": True}
        else:
            if n is not None:
                bar["n"] = n
            if vw is not None:
                bar["vw"] = vw
        out.setdefault(symbol, []).append(bar)
    return out


def get_bars(params: Mapping[str, str], ctx: RequestContext) -> dict[str, Any]:
    """GET /v2/stocks/bars -> {"bars": {SYM: [bar...]}, "next_page_token": str|null}."""
    symbols = parse_symbols(params.get("symbols"))
    query = parse_bars_query("/v2/stocks/bars", params, ctx, symbols)
    page, token = _page(query, ctx)
    return {"bars": render_bars(page, ctx.faults.lenient_bars), "next_page_token": token}


def get_symbol_bars(symbol: str, params: Mapping[str, str], ctx: RequestContext
                    ) -> dict[str, Any]:
    """GET /v2/stocks/{symbol}/bars -> {"bars": [bar...]|null, "symbol", "next_page_token"}."""
    symbol = parse_single_symbol(symbol)
    query = parse_bars_query(f"/v2/stocks/{symbol}/bars", params, ctx, (symbol,))
    page, token = _page(query, ctx)
    bars = render_bars(page, ctx.faults.lenient_bars).get(symbol)
    return {"bars": bars, "symbol": symbol, "next_page_token": token}


def _latest(symbols: tuple[str, ...], params: Mapping[str, str], ctx: RequestContext
            ) -> dict[str, dict[str, Any]]:
    feed = parse_choice("feed", params.get("feed"), FEEDS, "sip")
    parse_currency(params.get("currency"))
    spec = SeriesSpec(
        symbols=symbols, asof=None, feed=feed, adjustment="raw", timeframe=DAY,
        revisions=ctx.faults.revisions_for(ctx.number),
        last_session=last_completed_session(ctx.now), today=ny_date(ctx.now),
    )
    series = ctx.cache.get(spec)
    last = series.group_by("symbol", maintain_order=True).tail(1)
    return {sym: bars[0] for sym, bars in render_bars(last, ctx.faults.lenient_bars).items()}


def get_latest_bars(params: Mapping[str, str], ctx: RequestContext) -> dict[str, Any]:
    """GET /v2/stocks/bars/latest -> {"bars": {SYM: bar}} (the latest completed DAILY bar)."""
    return {"bars": _latest(parse_symbols(params.get("symbols")), params, ctx)}


def get_symbol_latest_bar(symbol: str, params: Mapping[str, str], ctx: RequestContext
                          ) -> dict[str, Any]:
    """GET /v2/stocks/{symbol}/bars/latest -> {"symbol", "bar"}; 404 when it has no bars."""
    symbol = parse_single_symbol(symbol)
    bars = _latest((symbol,), params, ctx)
    if symbol not in bars:
        raise NotFound(f"no bar found for {symbol}")
    return {"symbol": symbol, "bar": bars[symbol]}
