#!/usr/bin/env python3
"""Run Aurora end to end on the real S&P 500 sample, served through the Alpaca emulator.

    .venv/bin/python scripts/sp500_sample.py [--sample DIR] [--data-dir DIR]

Steps, each through Aurora's library API exactly as the CLI calls it:
1. serve `prices.parquet` through the in-process emulator. The sample's `close` is
   split-adjusted only and `adj_close` adds dividends; each step of adj_close/close is turned
   into a cash dividend (`dividends_from_adj_close`) so the emulator's `adjustment=all`
   reproduces `adj_close` and the corporate-actions endpoint lists the dividends;
2. fetch with the default validation severities: the real defects block publication and are
   listed by symbol and date;
3. the same fetch again, with `large_move` downgraded to a warning (an operator's decision
   after reading the report: AMD's +52% on 2016-04-22 was an earnings day, not a bad print);
4. import the sample's sector map and fundamentals (units detected per snapshot);
5. build the 45 features (every gate must pass, or the report names what is wrong);
6. evaluate the model and the baseline by purged walk-forward.

The sample is never copied into the repository; this script reads it where it lies.
"""

from __future__ import annotations

import argparse
import dataclasses
import secrets
import sys
import tempfile
from pathlib import Path

import polars as pl
from pydantic import SecretStr

from aurora.cli.progress import progress_bars
from aurora.config import AlpacaConfig, AuroraConfig, ValidationConfig
from aurora.errors import AuroraError
from aurora.features import build_features
from aurora.fetch import fetch_prices
from aurora.predict import evaluate
from aurora.progress import Progress
from aurora.reference import import_fundamentals, import_sector_map
from aurora.schemas import CORPORATE_ACTIONS_SCHEMA
from aurora.store import Store
from aurora.universe import Universe, load_universe
from aurora_testbed.emulator import EmulatorServer, MarketData

DEFAULT_SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "sp500-sample"


def dividends_from_adj_close(prices: pl.DataFrame) -> pl.DataFrame:
    """Cash dividends implied by the steps of adj_close / close (CRSP-style back-adjustment).

    With r_t = adj_close_t / close_t, a dividend D going ex on t multiplies earlier prices by
    1 - D / close_{t-1} = r_{t-1} / r_t, so D = close_{t-1} * (1 - r_{t-1} / r_t). Steps
    smaller than 1e-6 in relative size are rounding noise in the dump and are ignored.
    """
    ratio = (pl.col("adj_close") / pl.col("close"))
    steps = (
        prices.sort("symbol", "date")
        .with_columns(ratio.alias("r"))
        .with_columns(
            pl.col("r").shift(1).over("symbol").alias("r_prev"),
            pl.col("close").shift(1).over("symbol").alias("close_prev"),
        )
        .filter(pl.col("r_prev").is_not_null() & (pl.col("r_prev") / pl.col("r") < 1 - 1e-6))
        .with_columns((pl.col("close_prev") * (1 - pl.col("r_prev") / pl.col("r")))
                      .round(6).alias("cash_rate"))
    )
    return steps.select(
        (pl.lit("div-") + pl.col("symbol") + pl.lit("-") + pl.col("date").cast(pl.String))
        .alias("id"),
        pl.lit("cash_dividend").alias("action_type"),
        pl.col("symbol"),
        pl.lit(None, pl.String).alias("old_symbol"),
        pl.col("date").alias("ex_date"),
        pl.col("date").alias("process_date"),
        pl.lit(None, pl.Float64).alias("old_rate"),
        pl.lit(None, pl.Float64).alias("new_rate"),
        pl.col("cash_rate"),
    ).cast(CORPORATE_ACTIONS_SCHEMA)  # type: ignore[arg-type]


@dataclasses.dataclass
class SampleRun:
    """What each step produced (for the test and the printed summary)."""

    blocked_by: str | None = None
    fetch_lines: list[str] = dataclasses.field(default_factory=list)
    import_lines: list[str] = dataclasses.field(default_factory=list)
    build_lines: list[str] = dataclasses.field(default_factory=list)
    build_error: str | None = None
    evaluation_lines: list[str] = dataclasses.field(default_factory=list)
    evaluation: dict | None = None


def run_sample(sample: Path, data_dir: Path, *, progress: Progress | None = None) -> SampleRun:
    """Steps 1-6 of the module docstring on a fresh store in `data_dir`."""
    raw = pl.read_parquet(sample / "prices.parquet")
    dividends = dividends_from_adj_close(raw)
    market = MarketData(raw.drop("adj_close"), dividends, source=str(sample / "prices.parquet"))
    universe: Universe = load_universe(sample / "universe.txt", sectors={})
    first, last = raw["date"].min(), raw["date"].max()
    key_id, secret = f"SAMPLE{secrets.token_hex(6).upper()}", secrets.token_urlsafe(24)
    out = SampleRun()
    with EmulatorServer(market, {key_id: secret}, rate_limit_per_minute=10_000) as server:
        base = AuroraConfig(
            data_dir=data_dir,
            alpaca=AlpacaConfig(key_id=SecretStr(key_id), secret_key=SecretStr(secret),
                                data_url=server.url, base_url=server.url),
        )
        base = base.model_copy(update={"fetch": base.fetch.model_copy(
            update={"rate_limit_per_minute": 10_000})})
        try:
            fetch_prices(base, universe=universe, start=first, end=last, progress=progress)
        except AuroraError as exc:
            out.blocked_by = str(exc)
        lenient = base.model_copy(update={"validation": ValidationConfig(
            severities={"large_move": "warning"})})
        report = fetch_prices(lenient, universe=universe, start=first, end=last,
                              progress=progress)
        out.fetch_lines = report.summary_lines()
    store = Store(data_dir)
    out.import_lines += import_sector_map(store, sample / "sector_map.parquet").summary_lines()
    out.import_lines += import_fundamentals(store, sample / "fundamentals.parquet").summary_lines()
    try:
        built = build_features(store, lenient, universe=list(universe.symbols))
        out.build_lines = built.summary_lines()
    except AuroraError as exc:
        out.build_error = str(exc)
        return out
    report_eval = evaluate(store, lenient, universe=list(universe.symbols))
    out.evaluation = report_eval.summary
    out.evaluation_lines = report_eval.summary_lines()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=Path, default=DEFAULT_SAMPLE)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    if not (args.sample / "prices.parquet").exists():
        print(f"error: {args.sample}: the S&P 500 sample is not there", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        with progress_bars() as bars:
            result = run_sample(args.sample, args.data_dir or Path(scratch) / "data",
                                progress=bars)
        print("1. fetch with default severities:",
              f"blocked: {result.blocked_by}" if result.blocked_by else "published")
        print("2. fetch with large_move as a warning:")
        print("\n".join("   " + line for line in result.fetch_lines))
        print("3. reference data:")
        print("\n".join("   " + line for line in result.import_lines))
        if result.build_error:
            print(f"4. build FAILED: {result.build_error}")
            return 1
        print("4. build:")
        print("\n".join("   " + line for line in result.build_lines))
        print("5. evaluation:")
        print("\n".join("   " + line for line in result.evaluation_lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
