#!/usr/bin/env python3
"""LightGBM against the ridge baseline on one synthetic market, by purged walk-forward.

    .venv/bin/python scripts/model_vs_baseline.py SEED FIRST_YEAR LAST_YEAR

Generates the default universe's synthetic market (planted 5-day reversal) for the years
given, adjusts it, builds the 45 features and prints each model's mean daily rank IC with
its Newey-West t, and the paired difference. Used for the held-out table of docs/predict.md.
"""

from __future__ import annotations

import argparse
import datetime as dt

from aurora.adjustments import adjust_bars
from aurora.config import AuroraConfig
from aurora.features import compute_features
from aurora.predict import walk_forward
from aurora.universe import default_universe
from aurora_testbed.synthetic import generate_market


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seed", type=int)
    parser.add_argument("first_year", type=int)
    parser.add_argument("last_year", type=int)
    args = parser.parse_args()
    universe = default_universe()
    market = generate_market(universe.symbols, dt.date(args.first_year, 1, 2),
                             dt.date(args.last_year, 12, 30), seed=args.seed)
    prices = adjust_bars(market.bars, market.corporate_actions, "all")
    features = compute_features(prices, sectors=market.sectors,
                                actions=market.corporate_actions)
    summary = walk_forward(features, prices, AuroraConfig()).summary
    for name in ("lightgbm", "ridge"):
        ric = summary["models"][name]["rank_ic"]
        print(f"{name:<9} rank IC {ric['mean']:.4f} (t {ric['t']:.2f})")
    diff = summary["main_minus_baseline_rank_ic"]
    print(f"{'diff':<9} rank IC {diff['mean']:+.4f} (t {diff['t']:.2f})")


if __name__ == "__main__":
    main()
