"""Out-of-core builds at scale: wall time per million rows and peak memory per process.

    .venv/bin/python benchmarks/bench_outofcore.py [--symbols 1000 3000 10000] [--years 20]
        [--cases one-piece in-process cluster] [--months 12] [--quick]

For each universe size: a store of synthetic raw bars (`aurora_testbed.synthetic`, with its
splits and dividends as corporate actions), `--years` calendar years, generated a batch of
symbols at a time and written as the prices dataset (a part per year, each sorted by
(symbol, date), with its index: `aurora.store.bars`), is built by
`build_features`, each case in its own process so its peak RSS is clean:
  one-piece:  the default full build, in memory (the baseline; only up to
              `--one-piece-rows` bars, 16 M by default: its peak grows with universe x
              history);
  in-process: out of core (`compute.out_of_core`, `aurora.features.outofcore`), the year
              tasks one after another in the build's process;
  cluster:    on a local Dask cluster of 2 worker processes (one thread each), the build's
              process only scanning, gating and publishing.
Prints wall seconds, seconds per million feature rows published (flat across sizes =
linear cost), the speed against the one-piece build of the same size, the peak RSS of the
build's process and the larger peak RSS of the two
workers. The whole build is timed: the scan, the tasks, the gates with the lookahead
proof, and the publication (every part hashed into the manifest). Needs about 0.4 GB of
disk per million rows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
GENERATE_BATCH = 500  # symbols simulated at once


def make_store(root: Path, symbols: int, years: int) -> None:
    """A store whose latest version holds raw synthetic bars, their corporate actions and
    the sector map, written without ever holding all bars in memory."""
    import polars as pl
    import pyarrow.parquet as pq

    from aurora.store import Store
    from aurora.store.bars import ROW_GROUP_ROWS, write_index
    from aurora.store.datasets import part_name
    from aurora.store.versions import UniverseRecord
    from aurora_testbed.synthetic import generate_market

    names = [f"S{i:05d}" for i in range(symbols)]
    end = dt.date(2024, 12, 31)
    start = dt.date(end.year - years + 1, 1, 1)
    store = Store(root)
    actions, sectors = [], {}
    with store.transaction("fetch", base=None, params={"adjustment": "raw"},
                           universe=UniverseRecord(symbols=tuple(names),
                                                   source="benchmark")) as txn:
        writers: dict[int, pq.ParquetWriter] = {}
        rows: dict[int, int] = {}
        days: set[dt.date] = set()
        for i in range(0, symbols, GENERATE_BATCH):
            market = generate_market(names[i:i + GENERATE_BATCH], start, end, seed=7 + i)
            bars = market.bars.sort("symbol", "date")
            days.update(bars["date"].unique().to_list())
            for year in range(start.year, end.year + 1):
                table = bars.filter(pl.col("date").dt.year() == year).to_arrow()
                if year not in writers:
                    writers[year] = pq.ParquetWriter(txn.path(part_name("prices", year)),
                                                     table.schema, compression="zstd")
                writers[year].write_table(table, row_group_size=ROW_GROUP_ROWS)
                rows[year] = rows.get(year, 0) + table.num_rows
            actions.append(market.corporate_actions)
            sectors.update(market.sectors)
        for year, writer in writers.items():
            writer.close()
            txn.describe(part_name("prices", year), rows=rows[year])
        write_index(txn, {"rows": sum(rows.values()), "symbols": symbols,
                          "date_min": str(min(days)), "date_max": str(max(days)),
                          "sessions": len(days), "adjustment": "raw"})
        pl.concat(actions, how="diagonal_relaxed").write_parquet(
            txn.path("corporate_actions.parquet"))
        pl.DataFrame({"symbol": list(sectors), "sector": list(sectors.values())}
                     ).write_parquet(txn.path("sector_map.parquet"))


def _worker_peak_mb() -> float:
    from bench_features import peak_rss_mb

    return peak_rss_mb()


def run_case(case: str, data: str, months: int) -> None:
    from aurora.cluster import DaskRunner
    from aurora.config import AuroraConfig, ComputeConfig
    from aurora.features.builder import build_features
    from aurora.store import Store
    from bench_features import peak_rss_mb

    store = Store(Path(data))
    config = AuroraConfig(data_dir=Path(data),
                          compute=ComputeConfig(out_of_core=case != "one-piece",
                                                block_months=months))
    worker_peak = None
    if case in ("one-piece", "in-process"):
        t0 = time.perf_counter()
        result = build_features(store, config, incremental=False)
        elapsed = time.perf_counter() - t0
    else:
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None, memory_limit="8GiB") as cluster, \
                Client(cluster) as client:
            client.run(sys.path.insert, 0, str(ROOT / "benchmarks"))
            client.run(__import__, "aurora.features.outofcore")  # untimed imports
            t0 = time.perf_counter()
            result = build_features(store, config, runner=DaskRunner(
                cluster.scheduler_address, client=client))
            elapsed = time.perf_counter() - t0
            worker_peak = max(client.run(_worker_peak_mb).values())
    print(json.dumps({"seconds": elapsed, "rows": result.rows, "peak_mb": peak_rss_mb(),
                      "worker_peak_mb": worker_peak, "passed": result.gates.passed}))


def measure(case: str, data: Path, months: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--case", case, "--data", str(data),
                          "--months", str(months)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{case} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, nargs="+", default=[1000, 3000, 10000])
    parser.add_argument("--years", type=int, default=20)
    parser.add_argument("--cases", nargs="+", default=["one-piece", "in-process", "cluster"],
                        choices=["one-piece", "in-process", "cluster"])
    parser.add_argument("--one-piece-rows", type=float, default=16e6,
                        help="largest history (bars) the one-piece baseline is run on")
    parser.add_argument("--quick", action="store_true", help="300 and 900 symbols x 3 years")
    parser.add_argument("--months", type=int, default=12,
                        help="compute.block_months: a year task computes pieces this long")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        run_case(args.case, args.data, args.months)
        return
    sizes, years = ([300, 900], 3) if args.quick else (args.symbols, args.years)
    print(f"synthetic raw bars, {years} calendar years, out-of-core builds in pieces of "
          f"{args.months} months; load average {os.getloadavg()[0]:.2f}", flush=True)
    print(f"{'symbols':>8} {'case':>10} {'M rows':>7} {'wall s':>8} {'s/M rows':>9} "
          f"{'speed x':>8} {'peak MB':>8} {'worker MB':>9}", flush=True)
    for n in sizes:
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
            t0 = time.perf_counter()
            make_store(Path(tmp) / "data", n, years)
            print(f"{n:>8} {'(store)':>10} generated in {time.perf_counter() - t0:.0f} s",
                  flush=True)
            base = None
            for case in args.cases:
                if case == "one-piece" and n * years * 252 > args.one_piece_rows:
                    print(f"{n:>8} {case:>10} skipped: {n * years * 252 / 1e6:.0f} M bars is "
                          "beyond --one-piece-rows", flush=True)
                    continue
                r = measure(case, Path(tmp) / "data", args.months)
                assert r["passed"]
                base = base or (r["seconds"] if case == "one-piece" else None)
                per_m = r["seconds"] / (r["rows"] / 1e6)
                speed = f"{base / r['seconds']:8.2f}" if base else f"{'-':>8}"
                worker = f"{r['worker_peak_mb']:9.0f}" if r["worker_peak_mb"] else f"{'-':>9}"
                print(f"{n:>8} {case:>10} {r['rows'] / 1e6:7.2f} {r['seconds']:8.1f} "
                      f"{per_m:9.2f} {speed} {r['peak_mb']:8.0f} {worker}", flush=True)


if __name__ == "__main__":
    main()
