"""What minute-bar-derived daily features would cost: the reduction of minute bars to
per-(symbol, session) values, measured, for the cluster-size estimate of docs/scale-out.md.

    .venv/bin/python benchmarks/bench_minute.py [--symbols 200] [--sessions 60] [--threads 1]

Aurora has no minute bars yet. A minute-derived daily feature (realized volatility, the
volume share of the last half hour, the close against the day's VWAP) is a reduction of a
session's 390 bars per symbol to one value, followed by the daily engine as today. This
measures that reduction with polars on synthetic minute bars: written to Parquet (zstd) and
read back, then reduced, on `--threads` threads. Prints minute bars per second (read and
reduce, separately and together) and bytes per bar on disk: the rates the estimate scales.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if os.environ.get("POLARS_MAX_THREADS") != str(args.threads):
        os.environ["POLARS_MAX_THREADS"] = str(args.threads)  # read when polars loads
        os.execv(sys.executable, [sys.executable, *sys.argv])
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(3)
    minutes, n = 390, args.symbols * args.sessions * 390
    symbol = np.repeat(np.arange(args.symbols, dtype=np.int32), args.sessions * minutes)
    session = np.tile(np.repeat(np.arange(args.sessions, dtype=np.int32), minutes),
                      args.symbols)
    minute = np.tile(np.arange(minutes, dtype=np.int16), args.symbols * args.sessions)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 5e-4, n)))
    bars = pl.DataFrame({
        "symbol": pl.Series(symbol).cast(pl.String), "session": session, "minute": minute,
        "open": close * np.exp(rng.normal(0, 2e-4, n)), "high": close * 1.0004,
        "low": close * 0.9996, "close": close,
        "volume": rng.lognormal(7, 1, n).round()})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "minutes.parquet"
        bars.write_parquet(path, compression="zstd", compression_level=1)
        size = path.stat().st_size
        del bars
        t0 = time.perf_counter()
        read = pl.read_parquet(path)
        t1 = time.perf_counter()
        ret = (pl.col("close").log().diff().over("symbol", "session"))
        daily = (read.lazy().with_columns(ret.alias("r"))
                 .group_by("symbol", "session")
                 .agg((pl.col("r") ** 2).sum().sqrt().alias("realized_vol"),
                      (pl.col("volume").filter(pl.col("minute") >= 360).sum()
                       / pl.col("volume").sum()).alias("last_half_hour_share"),
                      (pl.col("close").last() / ((pl.col("close") * pl.col("volume")).sum()
                                                 / pl.col("volume").sum())).alias("close_vwap"))
                 .collect())
        t2 = time.perf_counter()
    assert daily.height == args.symbols * args.sessions
    print(f"{n:,} minute bars ({args.symbols} symbols x {args.sessions} sessions), "
          f"{args.threads} thread(s): {size / n:.1f} bytes per bar on disk")
    print(f"read   {t1 - t0:6.2f} s  {n / (t1 - t0) / 1e6:6.1f} M bars/s")
    print(f"reduce {t2 - t1:6.2f} s  {n / (t2 - t1) / 1e6:6.1f} M bars/s")
    print(f"both   {t2 - t0:6.2f} s  {n / (t2 - t0) / 1e6:6.1f} M bars/s")


if __name__ == "__main__":
    main()
