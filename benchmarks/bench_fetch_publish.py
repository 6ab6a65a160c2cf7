"""The publication of a daily fetch: one new session over a long history.

    .venv/bin/python benchmarks/bench_fetch_publish.py [--symbols 3000] [--years 20]
        [--repeats 3]

A store holds `--symbols` x `--years` of random-walk daily bars (every weekday a session);
a daily fetch then publishes the same history plus one session. Timed, each `--repeats`
times on a fresh copy of the store, the whole store transaction (writing, then hashing and
publishing every file of the new version):
  one file:  the bars rewritten whole as one prices.parquet (how versions were written
             before the prices became a dataset: the baseline);
  dataset:   `aurora.store.bars.write_prices` given the previous bars: only the year that
             gains the session is written, the other parts are adopted (copied or
             reflinked, and hashed, by the publication).
Prints the median seconds of each, their ratio, and the bytes of Parquet the new version
does not share with the one before (what the archive and a backup grow by). Needs about
0.05 GB of disk per million rows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from aurora.atomic import atomic_write_parquet
from aurora.store import Store
from aurora.store.bars import write_prices
from aurora.store.files import PRICES


def make_bars(symbols: int, years: int, seed: int = 3) -> pl.DataFrame:
    """Random-walk bars of `symbols` symbols over every weekday of `years` years ending
    2024-12-30, sorted by (symbol, date)."""
    days = pl.date_range(dt.date(2024 - years + 1, 1, 1), dt.date(2024, 12, 30), "1d",
                         eager=True)
    days = days.filter(days.dt.weekday() <= 5)
    rng = np.random.default_rng(seed)
    n = len(days)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.02, (symbols, n)), axis=1)).ravel()
    return pl.DataFrame({
        "symbol": np.repeat([f"S{i:05d}" for i in range(symbols)], n),
        "date": pl.concat([days] * symbols),
        "open": close * 0.999, "high": close * 1.01, "low": close * 0.99, "close": close,
        "volume": rng.integers(1_000, 1_000_000, symbols * n).astype(np.float64)})


def publish_one_file(store: Store, bars: pl.DataFrame, previous: pl.DataFrame) -> None:
    del previous  # the whole file is written whatever changed
    with store.transaction("fetch", base=store.current_version()) as txn:
        txn.remove("prices")
        txn.remove("prices.index.json")
        atomic_write_parquet(txn.path(PRICES), bars)
        txn.describe(PRICES, rows=bars.height, adjustment="raw")


def publish_dataset(store: Store, bars: pl.DataFrame, previous: pl.DataFrame) -> None:
    with store.transaction("fetch", base=store.current_version()) as txn:
        txn.remove(PRICES)
        write_prices(txn, bars, meta={"adjustment": "raw"}, previous=previous)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=3000)
    parser.add_argument("--years", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    bars = make_bars(args.symbols, args.years)
    last = bars["date"].max()
    history = bars.filter(pl.col("date") < last)
    print(f"{args.symbols:,} symbols x {args.years} years: {history.height:,} bars stored, "
          f"{bars.height - history.height:,} added by the daily fetch")
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="aurora-bench-") as tmp:
        for name, publish in (("one file", publish_one_file), ("dataset", publish_dataset)):
            seed = Path(tmp) / f"seed-{name.replace(' ', '-')}"
            publish(Store(seed), history, pl.DataFrame())
            for repeat in range(args.repeats):
                work = Path(tmp) / f"run-{repeat}"
                shutil.copytree(seed, work, symlinks=True)
                started = time.perf_counter()
                publish(Store(work), bars, history)
                results.setdefault(name, []).append(time.perf_counter() - started)
                store = Store(work)
                after = store.manifest()
                before = store.manifest(after.parent)
                encoded = sum(e.bytes for n, e in after.files.items() if n.endswith(".parquet")
                              and getattr(before.file(n), "sha256", None) != e.sha256)
                shutil.rmtree(work)
            print(f"{name:>9}: median {statistics.median(results[name]):6.2f} s over "
                  f"{args.repeats} (runs: "
                  f"{', '.join(f'{s:.2f}' for s in results[name])}); "
                  f"{encoded / 1e6:,.0f} MB of new Parquet in the version")
    ratio = statistics.median(results["dataset"]) / statistics.median(results["one file"])
    print(f"the dataset's publication takes {ratio:.2f}x the time of rewriting one file")

if __name__ == "__main__":
    main()
