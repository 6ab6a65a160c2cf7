"""Compute the 45 features from adjusted prices: the pure, store-free part of the build.

Stages (each vectorised over the whole panel; the only loop is over symbol chunks, which
bounds memory on large universes):

1. align: full session grid x symbols, sectors, point-in-time shares (`panel.align_panel`);
2. series: price and volume features on the (symbol, date)-sorted panel. Expressions with
   rolling state run per symbol (`.over("symbol")`), so a symbol's values, to the last bit,
   depend only on its own bars up to t; shift-only ones run on the whole column. Both are
   masked to null while the symbol has fewer than `lookback` prior sessions;
3. market: the equal-weight market return per date, then the per-symbol market-beta and
   residual features (same masking);
4. cross: per-date ranks, z-scores and sector neutralisation over the symbols present;
5. emit: only rows with at least MAX_LOOKBACK prior sessions, so every look-back is full.

Non-finite results (a 0/0 on a flat window) become null and count as missing in the gates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from aurora.features.panel import PanelInfo, align_panel
from aurora.features.registry import FEATURE_NAMES, MAX_LOOKBACK, REGISTRY
from aurora.features.residual import HELPERS, market_return
from aurora.features.spec import FeatureSpec

Progress = Callable[[str, int, int], None]
DEFAULT_CHUNK_ROWS = 1_000_000


@dataclass
class FeatureFrame:
    """The emitted features plus what the computation learned about its inputs."""

    features: pl.DataFrame
    info: PanelInfo
    turnover_fallback: dict[str, int]
    ignored_symbols: list[str]


def _masked(spec: FeatureSpec) -> pl.Expr:
    per_symbol = spec.windowed and spec.stage != "cross"
    value = spec.expr().over("symbol") if per_symbol else spec.expr()
    keep = (pl.col("_pos") >= spec.lookback) & value.is_finite()
    return pl.when(keep).then(value).otherwise(None).cast(pl.Float64).alias(spec.name)


def _specs(stage: str) -> list[FeatureSpec]:
    return [s for s in REGISTRY if s.stage == stage]


def _series_chunks(panel: pl.DataFrame, chunk_rows: int) -> list[pl.DataFrame]:
    """Split the (symbol, date)-sorted panel into chunks of whole symbols."""
    if panel.height <= chunk_rows:
        return [panel]
    sizes = panel.group_by("symbol", maintain_order=True).len()
    bounds, start, acc = [], 0, 0
    for n in sizes["len"].to_list():  # one entry per symbol: chunk bookkeeping, no compute
        if acc and acc + n > chunk_rows:
            bounds.append((start, acc))
            start, acc = start + acc, 0
        acc += n
    bounds.append((start, acc))
    return [panel.slice(off, length) for off, length in bounds]


def compute_panel(
    prices: pl.DataFrame,
    *,
    sectors: Mapping[str, str] | pl.DataFrame | None,
    fundamentals: pl.DataFrame | None = None,
    actions: pl.DataFrame | None = None,
    universe: Sequence[str] | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: Progress | None = None,
) -> FeatureFrame:
    """All 45 features for every (symbol, session) whose look-backs are full.

    prices: adjusted bars (store prices schema; an optional `dollar_volume` column overrides
    close x volume). sectors: symbol -> sector (None: Aurora's default map). fundamentals:
    symbol, as_of and shares_outstanding and/or market_cap in USD (point in time from as_of).
    actions: corporate actions, used only to put shares_outstanding on the volume's basis.
    universe: restrict to these symbols (others are ignored and listed in the result).
    Returns columns date, symbol and the 45 features (Float64), sorted by (symbol, date).
    """
    report = progress or (lambda stage, done, total: None)
    ignored: list[str] = []
    if universe is not None:
        wanted = set(universe)
        ignored = sorted(set(prices["symbol"].unique().to_list()) - wanted)
        prices = prices.filter(pl.col("symbol").is_in(list(wanted)))
    report("align", 0, 1)
    panel, info = align_panel(prices, sectors=sectors, fundamentals=fundamentals, actions=actions)
    report("align", 1, 1)

    ret_spec = next(s for s in REGISTRY if s.name == "f_ret_1d")
    panel = panel.with_columns(_masked(ret_spec))
    panel = panel.with_columns(market_return().alias("_mkt"))

    series = [s for s in _specs("series") if s.name != "f_ret_1d"]
    market = _specs("market")
    chunks = _series_chunks(panel, chunk_rows)
    del panel
    done = []
    for i, chunk in enumerate(chunks):
        report("series", i, len(chunks))
        out = (
            chunk.lazy()
            .with_columns(_masked(s) for s in series)
            .with_columns(_masked(HELPERS[0]))
            .with_columns(_masked(HELPERS[1]))
            .with_columns(_masked(s) for s in market)
            .with_columns(pl.col("shares").is_null().alias("_fallback"))
            .drop("open", "high", "low", "close", "volume", "dollar_volume", "shares", "_mkt",
                  *(h.name for h in HELPERS))
            .collect()
        )
        done.append(out)
        chunks[i] = pl.DataFrame()  # free the input chunk
    report("series", len(chunks), len(chunks))
    panel = pl.concat(done, rechunk=False)
    del done

    report("cross", 0, 1)
    emitted = (
        panel.lazy()
        .with_columns(_masked(s) for s in _specs("cross"))
        .filter(pl.col("_pos") >= MAX_LOOKBACK)
        .select("date", "symbol", *FEATURE_NAMES, "_fallback")
        .collect()
    )
    del panel
    report("cross", 1, 1)
    fallback = emitted.filter("_fallback").group_by("symbol").len().sort("symbol")
    features = emitted.drop("_fallback")
    del emitted
    return FeatureFrame(
        features=features,
        info=info,
        turnover_fallback=dict(zip(fallback["symbol"], fallback["len"], strict=True)),
        ignored_symbols=ignored,
    )


def compute_features(
    prices: pl.DataFrame,
    *,
    sectors: Mapping[str, str] | pl.DataFrame | None,
    fundamentals: pl.DataFrame | None = None,
    actions: pl.DataFrame | None = None,
    universe: Sequence[str] | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> pl.DataFrame:
    """The feature frame of `compute_panel` alone (for notebooks and tests)."""
    return compute_panel(
        prices, sectors=sectors, fundamentals=fundamentals, actions=actions,
        universe=universe, chunk_rows=chunk_rows,
    ).features
