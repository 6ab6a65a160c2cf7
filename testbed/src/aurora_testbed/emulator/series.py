"""Build the bar series one request asks for, before time filtering and paging.

Order of operations (each step documented in docs/emulator.md):
1. `asof` rename mapping: the queried symbol's history is a chain of segments, each a raw
   symbol over a [from, to) date range (META from 2022-06-09, FB before it).
2. Restatements from the fault plan (raw close of one (symbol, date) times a factor).
3. The feed: `iex` is a deterministic thinner series (about 1.5-3.5% of SIP volume and
   2-4% of its trade count, close moved by at most +-0.05%, kept inside [low, high]);
   `sip`/`delayed_sip` are the data as stored; `otc`/`boats`/`overnight` have no bars.
4. Bars of sessions that have not closed by the fake "now" are hidden (no partial bars).
5. Adjustment with `aurora.adjustments.adjust_bars` (actions with ex_date <= today), using
   the actions of each segment relabelled to the queried symbol.
6. Week/Month aggregation (open first, high max, low min, close last, volume and trade
   count summed, vwap volume-weighted), stamped at the period's first session.
   Intraday timeframes (Min, Hour) expand the daily bars of the sessions in `days` into
   synthetic minutes (`aurora_testbed.synthetic.minutes`, extended hours included, seed
   MINUTE_SEED: the stream replays the same minutes), then aggregate them into clock-
   aligned N-minute bars labelled by their start. A day's regular-session minutes agree
   exactly with its daily bar as served (feed and adjustment included).
Result columns: symbol (the key served), date, t (Int64 ns), open, high, low, close, volume
and, when the market has them, vwap and trade_count; sorted by symbol then t.
"""

from __future__ import annotations

import datetime as dt
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass

import polars as pl

from aurora.adjustments import adjust_bars
from aurora_testbed.emulator.data import MarketData
from aurora_testbed.emulator.faults import Revision
from aurora_testbed.emulator.params import Timeframe
from aurora_testbed.synthetic.minutes import minute_bars

MINUTE_SEED = 0

NO_BAR_FEEDS = ("otc", "boats", "overnight")
PRICE_ACTIONS = ("forward_split", "reverse_split", "cash_dividend")
_MAX_CHAIN = 16


@dataclass(frozen=True)
class Segment:
    """Bars labelled `raw` with lo <= date < hi (None: unbounded) belong to the entity."""

    raw: str
    lo: dt.date | None
    hi: dt.date | None


@dataclass(frozen=True)
class SeriesSpec:
    """Everything that determines a request's series (hashable: it is the cache key)."""

    symbols: tuple[str, ...]
    asof: dt.date | None
    feed: str
    adjustment: str
    timeframe: Timeframe
    revisions: tuple[Revision, ...]
    last_session: dt.date
    today: dt.date
    days: tuple[dt.date, dt.date] | None = None  # intraday: the sessions to expand


def entity_segments(symbol: str, asof: dt.date | None,
                    renames: list[tuple[str, str, dt.date]]) -> list[Segment]:
    """The raw-symbol segments making up `symbol`'s history as identified on `asof`.

    `renames` holds (new_symbol, old_symbol, ex_date). With asof None, or when no rename
    into `symbol` took effect on or before asof (including a symbol that no longer exists
    on asof), the answer is the bars labelled `symbol`, unmapped. Chains (A->B->C) follow.
    """
    if asof is None:
        return [Segment(symbol, None, None)]
    segments: list[Segment] = []
    current, hi = symbol, None
    for _ in range(_MAX_CHAIN):
        bound = asof if hi is None else hi - dt.timedelta(days=1)
        candidates = [r for r in renames if r[0] == current and r[2] <= bound]
        if not candidates:
            segments.append(Segment(current, None, hi))
            return segments
        _new, old, ex_date = max(candidates, key=lambda r: r[2])
        segments.append(Segment(current, ex_date, hi))
        current, hi = old, ex_date
    return segments


def _in_segment(seg: Segment, on: str = "date") -> pl.Expr:
    """Rows labelled seg.raw whose `on` date lies in [seg.lo, seg.hi)."""
    expr = pl.col("symbol") == seg.raw
    if seg.lo is not None:
        expr = expr & (pl.col(on) >= seg.lo)
    if seg.hi is not None:
        expr = expr & (pl.col(on) < seg.hi)
    return expr


def _revise(bars: pl.DataFrame, revisions: tuple[Revision, ...]) -> pl.DataFrame:
    for rev in revisions:
        hit = (pl.col("symbol") == rev.symbol) & (pl.col("date") == rev.day)
        bars = bars.with_columns(
            pl.when(hit).then(pl.col("close") * rev.factor).otherwise(pl.col("close"))
            .alias("close")
        ).with_columns(
            pl.max_horizontal("high", "close").alias("high"),
            pl.min_horizontal("low", "close").alias("low"),
        )
    return bars


def _unit_noise(salt: int) -> pl.Expr:
    """A deterministic pseudo-random number in [0, 1) per (symbol, date) row."""
    mixed = (pl.col("date").cast(pl.Int64) * 2_654_435_761 + pl.col("_h") * 40_503 + salt)
    return (mixed % 1_000_003).cast(pl.Float64) / 1_000_003.0


def _iex(bars: pl.DataFrame) -> pl.DataFrame:
    hashes = {s: zlib.crc32(s.encode()) % 1_000_003
              for s in bars.get_column("symbol").unique().to_list()}
    out = bars.with_columns(
        pl.col("symbol").replace_strict(hashes, return_dtype=pl.Int64).alias("_h")
    )
    shifted = (pl.col("close") * (1.0 + (_unit_noise(17) - 0.5) * 0.001)).round(2)
    updates = [
        (pl.col("volume") * (0.015 + 0.02 * _unit_noise(3))).round(0).alias("volume"),
        pl.min_horizontal(pl.max_horizontal(shifted, pl.col("low")), pl.col("high"))
        .alias("close"),
    ]
    if "trade_count" in bars.columns:
        updates.append(
            (pl.col("trade_count").cast(pl.Float64) * (0.02 + 0.02 * _unit_noise(11)))
            .round(0).cast(pl.Int64).alias("trade_count")
        )
    return out.with_columns(updates).drop("_h")


def _aggregate(bars: pl.DataFrame, timeframe: Timeframe) -> pl.DataFrame:
    if timeframe.unit == "Day":
        return bars
    if timeframe.unit == "Week":
        period = pl.col("date").dt.truncate("1w")
    else:
        months = pl.col("date").dt.year().cast(pl.Int64) * 12 + pl.col("date").dt.month() - 1
        period = months // timeframe.amount
    aggs = [
        pl.col("date").first(), pl.col("open").first(), pl.col("high").max(),
        pl.col("low").min(), pl.col("close").last(), pl.col("volume").sum(),
    ]
    if "vwap" in bars.columns:
        weighted = (pl.col("vwap") * pl.col("volume")).sum() / pl.col("volume").sum()
        aggs.append(pl.when(pl.col("vwap").null_count() == 0).then(weighted).alias("vwap"))
    if "trade_count" in bars.columns:
        aggs.append(pl.col("trade_count").sum())
    return (
        bars.with_columns(period.alias("_period"))
        .group_by("symbol", "_period", maintain_order=True)
        .agg(aggs)
        .drop("_period")
    )


def _intraday(daily: pl.DataFrame, timeframe: Timeframe,
              days: tuple[dt.date, dt.date] | None) -> pl.DataFrame:
    """The N-minute bars of the daily bars whose date is in `days` (see step 6)."""
    if days is not None:
        daily = daily.filter(pl.col("date").is_between(*days))
    minutes = minute_bars(daily, MINUTE_SEED, extended=True)
    if timeframe.minutes > 1:
        start = pl.col("timestamp").dt.truncate(f"{timeframe.minutes}m")
        minutes = (
            minutes.with_columns(start.alias("timestamp"),
                                 (pl.col("vwap") * pl.col("volume")).alias("_pv"))
            .group_by("symbol", "timestamp", maintain_order=True)
            .agg(pl.col("open").first(), pl.col("high").max(), pl.col("low").min(),
                 pl.col("close").last(), pl.col("volume").sum(),
                 pl.col("trade_count").sum(), (pl.col("_pv").sum() / pl.col("volume").sum())
                 .alias("vwap"))
        )
    date = pl.col("timestamp").dt.convert_time_zone("America/New_York").dt.date()
    out = minutes.with_columns(date.alias("date"),
                               pl.col("timestamp").dt.epoch("ns").alias("t"))
    keep = ["symbol", "date", "t", "open", "high", "low", "close", "volume"]
    keep += [c for c in ("vwap", "trade_count") if c in daily.columns]
    return out.select(keep).sort("symbol", "t")


def build_series(market: MarketData, spec: SeriesSpec) -> pl.DataFrame:
    """The served series for `spec` (see the module docstring for the steps)."""
    actions = market.corporate_actions
    renames = [
        (r["symbol"], r["old_symbol"], r["ex_date"])
        for r in actions.filter(pl.col("action_type") == "name_change").iter_rows(named=True)
    ]
    plan = {sym: entity_segments(sym, spec.asof, renames) for sym in spec.symbols}
    raw_symbols = sorted({seg.raw for segs in plan.values() for seg in segs})
    bars = market.bars.filter(pl.col("symbol").is_in(raw_symbols))
    if spec.feed in NO_BAR_FEEDS:
        bars = bars.clear()
    bars = _revise(bars, spec.revisions)
    if spec.feed == "iex" and bars.height:
        bars = _iex(bars)
    bars = bars.filter(pl.col("date") <= spec.last_session)

    price_actions = actions.filter(pl.col("action_type").is_in(PRICE_ACTIONS))
    frames, action_frames = [], []
    for key, segments in plan.items():
        for seg in segments:
            frames.append(bars.filter(_in_segment(seg)).with_columns(pl.lit(key).alias("symbol")))
            seg_actions = price_actions.filter(_in_segment(seg, on="ex_date"))
            action_frames.append(seg_actions.with_columns(pl.lit(key).alias("symbol")))
    series = pl.concat(frames) if frames else bars.clear()
    series = series.sort("symbol", "date")
    if spec.adjustment != "raw" and series.height:
        relabelled = pl.concat(action_frames) if action_frames else price_actions.clear()
        series = adjust_bars(series, relabelled, spec.adjustment, as_of=spec.today)  # type: ignore[arg-type]
    if spec.timeframe.intraday:
        return _intraday(series, spec.timeframe, spec.days)
    series = _aggregate(series, spec.timeframe)
    t = pl.col("date").cast(pl.Datetime("ns")).dt.replace_time_zone("America/New_York")
    return series.with_columns(t.dt.epoch("ns").alias("t"))


class SeriesCache:
    """A small thread-safe LRU of built series (pages of one query reuse one build)."""

    def __init__(self, market: MarketData, maxsize: int = 4) -> None:
        self._market = market
        self._maxsize = maxsize
        self._items: OrderedDict[SeriesSpec, pl.DataFrame] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, spec: SeriesSpec) -> pl.DataFrame:
        with self._lock:
            if spec in self._items:
                self._items.move_to_end(spec)
                return self._items[spec]
        series = build_series(self._market, spec)
        with self._lock:
            self._items[spec] = series
            while len(self._items) > self._maxsize:
                self._items.popitem(last=False)
        return series
