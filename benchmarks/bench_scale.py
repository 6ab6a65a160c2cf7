"""How the build's cost grows with the universe, and what a Dask cluster of workers holds.

    .venv/bin/python benchmarks/bench_scale.py [--symbols 1000 3000] [--years 4] [--months 12]
        [--quick]

For each universe size, on synthetic bars (`bench_features.synthetic_inputs`: split and
dividend adjusted, `--years` calendar years), each case in its own subprocess so its peak
RSS is clean:
  one-piece:  `compute_panel` over the whole history in this process (the baseline, the
              default build);
  blocks:     `compute_blocks`, one task per calendar year (`aurora.features.blocks`), run
              one after another in this process;
  cluster:    the same blocks on a local Dask cluster of 2 worker processes (one thread
              each, started by `distributed.LocalCluster`; Aurora imported on them before
              the clock starts), the result gathered here.
Prints wall seconds, seconds per million rows emitted (flat across sizes = linear cost), the
ratio to the one-piece build of the same size, the peak RSS of the case's process and, for
the cluster, the largest peak RSS of a worker process (what one machine of a cluster must
hold for one year of that universe). The command's process still holds the whole prices and
features (docs/scale-out.md: not yet out of core).
"""

from __future__ import annotations

import argparse
import importlib
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


def _worker_peak_mb() -> float:
    from bench_features import peak_rss_mb

    return peak_rss_mb()


def run_case(case: str, prices_path: str, sectors_path: str, months: int) -> None:
    import polars as pl

    from aurora.cluster import DaskRunner
    from aurora.features.blocks import compute_blocks
    from aurora.features.compute import compute_panel
    from bench_features import peak_rss_mb

    prices = pl.read_parquet(prices_path)
    sectors = dict(pl.read_parquet(sectors_path).iter_rows())
    worker_peak = None
    t0 = time.perf_counter()
    if case == "one-piece":
        rows = compute_panel(prices, sectors=sectors).features.height
    elif case == "blocks":
        rows = compute_blocks(prices, sectors=sectors, months=months).features.height
    else:
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None, memory_limit="8GiB") as cluster, \
                Client(cluster) as client:
            client.run(sys.path.insert, 0, str(ROOT / "benchmarks"))
            client.run(importlib.import_module, "aurora.features.blocks")  # untimed imports
            t0 = time.perf_counter()
            rows = compute_blocks(prices, sectors=sectors, months=months,
                                  runner=DaskRunner(cluster.scheduler_address, client=client)
                                  ).features.height
            elapsed = time.perf_counter() - t0
            worker_peak = max(client.run(_worker_peak_mb).values())
            print(json.dumps({"seconds": elapsed, "rows": rows, "peak_mb": peak_rss_mb(),
                              "worker_peak_mb": worker_peak}))
            return
    print(json.dumps({"seconds": time.perf_counter() - t0, "rows": rows,
                      "peak_mb": peak_rss_mb(), "worker_peak_mb": worker_peak}))


def measure(case: str, prices: Path, sectors: Path, months: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--case", case, "--prices", str(prices),
                          "--sectors", str(sectors), "--months", str(months)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{case} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, nargs="+", default=[1000, 3000])
    parser.add_argument("--years", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="200 and 600 symbols x 3 years")
    parser.add_argument("--months", type=int, default=12,
                        help="months per block (compute.block_months): 12, 6, 4, 3, 2 or 1")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--prices", help=argparse.SUPPRESS)
    parser.add_argument("--sectors", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        run_case(args.case, args.prices, args.sectors, args.months)
        return
    from bench_features import synthetic_inputs

    sizes, years = ([200, 600], 3) if args.quick else (args.symbols, args.years)
    print(f"synthetic bars, {years} calendar years, blocks of {args.months} months; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'symbols':>8} {'case':>10} {'wall s':>8} {'s/M rows':>9} {'speed x':>11} "
          f"{'peak MB':>8} {'worker MB':>9}")
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            prices, sectors = synthetic_inputs(Path(tmp), n, years)
            base = None
            for case in ("one-piece", "blocks", "cluster"):
                r = measure(case, prices, sectors, args.months)
                base = base or r["seconds"]
                per_m = r["seconds"] / (r["rows"] / 1e6)
                worker = f"{r['worker_peak_mb']:9.0f}" if r["worker_peak_mb"] else f"{'-':>9}"
                print(f"{n:>8} {case:>10} {r['seconds']:8.2f} {per_m:9.2f} "
                      f"{base / r['seconds']:11.2f} {r['peak_mb']:8.0f} {worker}", flush=True)


if __name__ == "__main__":
    main()
