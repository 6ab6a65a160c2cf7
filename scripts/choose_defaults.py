#!/usr/bin/env python3
"""Choose the model's defaults by a nested walk-forward on a real-data store.

    .venv/bin/python scripts/choose_defaults.py --data-dir /tmp/sp [--out FILE]

The store is one made by `scripts/sp500_sample.py` (the S&P 500 sample). The procedure:

1. Every candidate configuration (`GRID`: horizon 5 or 20 sessions; LightGBM trees,
   leaves and leaf size; the share of the documented factors, `predict.factor_weight`)
   runs Aurora's purged walk-forward once over the whole history, so each of its daily
   rank ICs comes from a model trained only on data before that date.
2. Outer blocks: the half-years from `--outer-start` on. For a block starting on S, each
   candidate is judged only on its daily rank ICs whose label ended before S (inner dates),
   by their Newey-West t (lag horizon - 1: scale-free across horizons); the best is
   chosen, and its results inside the block are what is reported. So no reported date
   took part in choosing the configuration that scored it.
3. The chosen blocks are stitched: out-of-sample rank IC with its t, and one cost-aware
   backtest (`aurora.backtest`, default settings, holding = the chosen horizon) of the
   chosen scores over the whole span (`stitched_backtest`), net Sharpe and annual return.
4. The defaults: the procedure applied at the end of the data (all dates as inner).

Prints a table a person reads at a glance and, with --out, writes the JSON behind it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from aurora import calendar
from aurora.backtest import performance
from aurora.backtest.api import settings_from
from aurora.backtest.costs import market_frame
from aurora.backtest.engine import run_backtest
from aurora.backtest.simulate import Market
from aurora.config import AuroraConfig, PredictConfig
from aurora.predict import metrics
from aurora.predict.api import chosen_universe, load_inputs, member_rows
from aurora.predict.evaluate import walk_forward
from aurora.store import Store
from aurora.store.bars import read_prices

TREES = [  # (n_estimators, num_leaves, min_data_in_leaf)
    (100, 2, 1000),  # the defaults chosen on the synthetic market
    (300, 2, 1000),
    (100, 7, 300),
    (300, 7, 300),
]
HORIZONS = (5, 20)
FACTOR_WEIGHTS = (0.0, 0.5, 1.0)


@dataclass(frozen=True)
class Candidate:
    horizon: int
    trees: tuple[int, int, int]
    factor_weight: float

    def label(self) -> str:
        if self.factor_weight >= 1:
            return f"h{self.horizon} factors only"
        n, leaves, leaf = self.trees
        blend = f" + factors {self.factor_weight:g}" if self.factor_weight else ""
        return f"h{self.horizon} trees {n}x{leaves} leaf {leaf}{blend}"

    def predict_config(self, base: PredictConfig) -> PredictConfig:
        n, leaves, leaf = self.trees
        return base.model_copy(update={"horizon": self.horizon, "n_estimators": n,
                                       "num_leaves": leaves, "min_data_in_leaf": leaf,
                                       "factor_weight": self.factor_weight})


GRID = [Candidate(h, t, w) for h in HORIZONS for w in FACTOR_WEIGHTS
        for t in (TREES[:1] if w >= 1 else TREES)]


def half_years(first: dt.date, last: dt.date) -> list[tuple[dt.date, dt.date]]:
    """[start, end] of each calendar half-year from `first`'s to `last`'s."""
    blocks, start = [], dt.date(first.year, 1 if first.month <= 6 else 7, 1)
    while start <= last:
        end = dt.date(start.year, 6, 30) if start.month == 1 else dt.date(start.year, 12, 31)
        blocks.append((start, min(end, last)))
        start = end + dt.timedelta(days=1)
    return blocks


def inner_t(daily: pl.DataFrame, before: dt.date, horizon: int) -> float:
    """NW t of the daily rank IC whose label ended before `before`."""
    known = daily.filter(pl.col("label_end") < before)["rank_ic"].to_numpy()
    t = metrics.newey_west_tstat(known, horizon - 1)
    return -np.inf if np.isnan(t) else t


def with_label_end(daily: pl.DataFrame, horizon: int) -> pl.DataFrame:
    """Each feature date's label end: the close `horizon` sessions after the decision
    date (the session after the feature date)."""
    first, last = daily["date"].min(), daily["date"].max()
    days = calendar.sessions(first, last + dt.timedelta(days=2 * horizon + 14))
    index = {d: i for i, d in enumerate(days)}
    ends = [days[index[d] + horizon + 1] for d in daily["date"].to_list()]
    return daily.with_columns(label_end=pl.Series(ends, dtype=pl.Date))


def stitched_backtest(picks: list[tuple[Candidate, pl.DataFrame]], market: Market,
                      base: AuroraConfig, blocks: list[tuple[dt.date, dt.date]]
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Daily net and gross returns of trading the chosen scores of every block as one
    book (one backtest over the whole span, so no session counts twice and the tranches
    build up once). Blocks that chose different horizons are run separately, each kept to
    its own dates, with the horizon as the holding."""
    horizons = {pick.horizon for pick, _ in picks}
    if len(horizons) == 1:
        pick = picks[0][0]
        settings = settings_from(base.model_copy(update={
            "predict": pick.predict_config(base.predict)}))
        daily = run_backtest(pl.concat([s for _, s in picks]), market, settings).daily
        return daily["net"].to_numpy(), daily["gross"].to_numpy()
    nets, grosses = [], []
    for (pick, scores), (start, end) in zip(picks, blocks, strict=True):
        settings = settings_from(base.model_copy(update={
            "predict": pick.predict_config(base.predict)}))
        daily = run_backtest(scores, market, settings).daily.filter(
            pl.col("date").is_between(start, end))
        nets.append(daily["net"].to_numpy())
        grosses.append(daily["gross"].to_numpy())
    return np.concatenate(nets), np.concatenate(grosses)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--outer-start", type=dt.date.fromisoformat,
                        default=dt.date(2018, 1, 1))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    store = Store(args.data_dir)
    base = AuroraConfig(data_dir=args.data_dir)
    inputs = load_inputs(store)
    chosen = chosen_universe(store, base, None, inputs.version)
    features = member_rows(inputs.features, chosen)
    runs: dict[Candidate, dict[str, Any]] = {}
    for i, cand in enumerate(GRID, start=1):
        config = base.model_copy(update={"predict": cand.predict_config(base.predict)})
        report = walk_forward(features, inputs.prices, config, symbols=list(chosen.symbols))
        main_model = report.summary["main_model"]
        daily = with_label_end(report.daily.filter(pl.col("model") == main_model)
                               .select("date", "rank_ic").sort("date"), cand.horizon)
        scores = report.oos.filter(pl.col("model") == main_model).select("date", "symbol",
                                                                         "score")
        rank_ic = report.summary["models"][main_model]["rank_ic"]
        runs[cand] = {"daily": daily, "scores": scores, "whole": rank_ic}
        print(f"[{i}/{len(GRID)}] {cand.label():<36} whole-period rank IC "
              f"{rank_ic['mean']:+.4f} t {rank_ic['t']:+.2f} (not used to choose)",
              flush=True)

    last = max(r["daily"]["date"].max() for r in runs.values())
    blocks = half_years(args.outer_start, last)
    raw = read_prices(store, inputs.version, symbols=chosen.symbols)
    market = Market.from_frame(market_frame(
        inputs.prices.filter(pl.col("symbol").is_in(list(chosen.symbols))), raw))
    outer: list[dict[str, Any]] = []
    rank_ics: list[np.ndarray] = []
    picks: list[tuple[Candidate, pl.DataFrame]] = []
    for start, end in blocks:
        pick = max(GRID, key=lambda c: inner_t(runs[c]["daily"], start, c.horizon))
        inside = runs[pick]["daily"].filter(pl.col("date").is_between(start, end))
        ric = inside["rank_ic"].to_numpy()
        rank_ics.append(ric)
        picks.append((pick, runs[pick]["scores"].filter(pl.col("date").is_between(start,
                                                                                  end))))
        outer.append({"block": [str(start), str(end)], "chosen": pick.label(),
                      "inner_t": inner_t(runs[pick]["daily"], start, pick.horizon),
                      "rank_ic": float(np.nanmean(ric)),
                      "t": metrics.newey_west_tstat(ric, pick.horizon - 1)})
    net, gross = stitched_backtest(picks, market, base, blocks)
    stitched = np.concatenate(rank_ics)
    lag = max(HORIZONS) - 1
    result = {
        "outer": outer,
        "stitched": {"rank_ic": float(np.nanmean(stitched)),
                     "t": metrics.newey_west_tstat(stitched, lag), "dates": int(stitched.size),
                     "net": performance.summary(net),
                     "gross": performance.summary(gross)},
        "defaults": max(GRID, key=lambda c: inner_t(runs[c]["daily"],
                                                    dt.date(9999, 1, 1),
                                                    c.horizon)).label(),
        "whole_period": {c.label(): runs[c]["whole"] for c in GRID},
    }
    print("\nouter block            chosen on earlier dates only          inner t  rank IC"
          "      t")
    for o in outer:
        print(f"{o['block'][0]}..{o['block'][1][5:]}  {o['chosen']:<36} {o['inner_t']:+7.2f}"
              f" {o['rank_ic']:+8.4f} {o['t']:+6.2f}")
    s = result["stitched"]
    print(f"stitched out of sample: rank IC {s['rank_ic']:+.4f} (t {s['t']:+.2f}, NW lag "
          f"{lag}, {s['dates']} dates); backtest net Sharpe {s['net']['sharpe']:+.2f}, net "
          f"{s['net']['annual_return']:+.1%}/yr, gross {s['gross']['annual_return']:+.1%}/yr")
    print(f"defaults (the procedure on all dates): {result['defaults']}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
