"""Benchmark the feature build against the seed's pandas idiom, measured in the same run.

    .venv/bin/python benchmarks/bench_features.py [--symbols 3000] [--years 10] [--quick]
        [--workers N] [--stages] [--repeats N]

--quick: a 500-symbol x 3-year synthetic universe instead (smoke run, same report).
--workers: worker threads of the build's block stages (default: the library default, the CPU
count capped at 4); when that is more than 1, the single-threaded build (workers=1) is
measured too (polars may still use a second core).
--stages: also print the wall and CPU seconds of each build stage (align, each phase of the
plan, emit; CPU of the whole process, all threads).
--repeats: run every case N times, in rounds (each round runs every case once), and report
each case's median run, with every run's time: on a machine whose speed drifts from one
quarter of an hour to the next, one run of each case can land in different hours.

Cases, each in its own subprocess so its peak RSS is clean:
  baseline: the seed's idiom, pandas groupby().transform(lambda ...) for its example features
            (ret_1d, vol_5d, volume_surprise, amihud, cs rank, cs zscore): 6 features.
  aurora:   `compute_features`, all 45 features (the build minus gates and I/O).
  incremental: the same on what a one-session incremental build computes from (the last
            session and the largest look-back before it), each node over the sessions its
            readers need (`windowed=True`), told each symbol's first and last bar in the
            whole history as the build does: the spans the last build recorded (computed
            untimed) widened by the tail (`panel.extend_spans`, timed); its rows are the
            last session's.
Imports happen before the clock starts in both cases (aurora.features.compute is imported
untimed for the build), and so does a warm-up run of the same case on 5 symbols (pandas'
import and first calls for the baseline; its time is printed).
Throughput is feature-cells per second (features x rows / seconds); rows are the rows each
produces (Aurora emits only rows past the warm-up). Datasets: ../shared/data/sp500-sample
and a synthetic universe (aurora_testbed.synthetic.generate_market, split/dividend adjusted).
Prints the ratio aurora / baseline per feature-cell (target >= 15x) by wall time and by CPU
time (user + sys of the case's process, all threads: fairer when the machine is shared), the
load average at each measurement, and peak memory (target: the synthetic build within 4 GB):
the case's peak RSS.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "sp500-sample"


def baseline(prices: pl.DataFrame) -> tuple[int, int]:
    """The seed's pandas idiom; returns (features, rows)."""
    df = prices.select("date", "symbol", "close", "volume").to_pandas()
    df = df.sort_values(["symbol", "date"])
    g = df.groupby("symbol")
    df["ret_1d"] = g["close"].transform(lambda x: x.pct_change())
    df["vol_5d"] = df.groupby("symbol")["ret_1d"].transform(lambda x: x.rolling(5).std())
    df["volume_surprise"] = g["volume"].transform(lambda x: x / x.rolling(20).mean() - 1)
    df["amihud"] = df.groupby("symbol")["ret_1d"].transform(lambda x: x.abs()) / (
        df["close"] * df["volume"])
    df["cs_rank_ret"] = df.groupby("date")["ret_1d"].transform(lambda x: x.rank(pct=True))
    df["cs_zscore_vol"] = df.groupby("date")["vol_5d"].transform(
        lambda x: (x - x.mean()) / x.std())
    return 6, len(df)


def aurora(prices: pl.DataFrame, sectors: pl.DataFrame, workers: int | None,
           stages: dict[str, list[float]], recorded: pl.DataFrame | None = None
           ) -> tuple[int, int]:
    """The build's computation; `recorded`: `prices` is a one-session tail, computed as an
    incremental build does: windowed, told the whole history's bar spans by widening those
    the last build recorded (`recorded`, the spans of the history before the tail's last
    session) with the tail (timed too)."""
    import numpy as np

    from aurora.features.compute import compute_panel
    from aurora.features.panel import extend_spans

    last = [time.perf_counter(), time.process_time()]

    def progress(stage: str, done: int, total: int) -> None:
        now = [time.perf_counter(), time.process_time()]
        spent = stages.setdefault(stage, [0.0, 0.0])
        spent[0] += now[0] - last[0]
        spent[1] += now[1] - last[1]
        last[:] = now

    tail = recorded is not None
    out = compute_panel(prices, sectors=sectors, fundamentals=None, workers=workers,
                        progress=progress, windowed=tail,
                        spans=extend_spans(recorded, prices) if tail else None,
                        since=np.datetime64(prices["date"].max()) if tail else None)
    return 45, out.features.height


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM: reset by exec, unlike ru_maxrss which keeps
    the forking parent's high-water mark on Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_case(case: str, prices_path: str, sectors_path: str, workers: int | None) -> None:
    from aurora.calendar import sessions

    sessions(dt.date(2000, 1, 3), dt.date(2000, 1, 4))  # build the calendar: start-up, untimed
    importlib.import_module("aurora.features.compute")  # import time is start-up, untimed

    prices = pl.read_parquet(prices_path)
    sectors = pl.read_parquet(sectors_path)
    recorded = None
    if case == "incremental":
        from aurora.features.panel import bar_spans

        tail = one_session_tail(prices)
        recorded = bar_spans(prices.filter(pl.col("date") < tail["date"].max()))  # untimed
        prices = tail
    # Warm-up, untimed in both cases: the same code on 5 symbols, so one-off start-up costs
    # (pandas' import, pandas' and polars' lazy initialisation) are not charged to the
    # throughput; reported separately.
    few = prices.filter(pl.col("symbol").is_in(prices["symbol"].unique().sort().head(5).to_list()))
    warm = time.perf_counter()
    _ = (baseline(few) if case == "baseline"
         else aurora(few, sectors, workers, {},
                     None if recorded is None else recorded.filter(pl.col("symbol").is_in(
                         few["symbol"].unique().implode()))))
    warm_up = time.perf_counter() - warm
    stages: dict[str, list[float]] = {}
    cpu0 = _cpu_seconds()
    start = time.perf_counter()
    features, rows = (baseline(prices) if case == "baseline"
                      else aurora(prices, sectors, workers, stages, recorded))
    if case == "incremental":
        rows = prices.filter(pl.col("date") == prices["date"].max()).height
    seconds = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu0
    peak_mb = peak_rss_mb()
    print(json.dumps({"features": features, "rows": rows, "seconds": seconds,
                      "cpu_seconds": cpu, "warm_up": warm_up, "peak_mb": peak_mb,
                      "stages": stages}))


def one_session_tail(prices: pl.DataFrame) -> pl.DataFrame:
    """What a one-session incremental build computes from: the last session and the largest
    look-back of sessions before it (`features/incremental.py`)."""
    from aurora.features.registry import feature_set

    lookback = max(e.lookback for e in feature_set().values())
    dates = prices["date"].unique().sort()
    return prices.filter(pl.col("date") >= dates[max(0, len(dates) - lookback - 1)])


def _cpu_seconds() -> float:
    """User + sys seconds of this process, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def sample_inputs(tmp: Path) -> tuple[Path, Path]:
    raw = pl.read_parquet(SAMPLE / "prices.parquet")
    k = pl.col("adj_close") / pl.col("close")
    prices = raw.select("date", "symbol",
                        *[(pl.col(c) * k).alias(c) for c in ("open", "high", "low", "close")],
                        "volume")
    prices.write_parquet(tmp / "sp500.parquet")
    pl.read_parquet(SAMPLE / "sector_map.parquet").select("symbol", "sector").write_parquet(
        tmp / "sp500-sectors.parquet")
    return tmp / "sp500.parquet", tmp / "sp500-sectors.parquet"


def synthetic_inputs(tmp: Path, symbols: int, years: int) -> tuple[Path, Path]:
    from aurora.adjustments import adjust_bars
    from aurora_testbed.synthetic import generate_market

    names = [f"S{i:04d}" for i in range(symbols)]
    end = dt.date(2024, 12, 31)
    market = generate_market(names, dt.date(end.year - years + 1, 1, 1), end, seed=7)
    prices = adjust_bars(market.bars, market.corporate_actions, mode="all")
    prices.select("date", "symbol", "open", "high", "low", "close", "volume").write_parquet(
        tmp / "synthetic.parquet")
    pl.DataFrame({"symbol": list(market.sectors), "sector": list(market.sectors.values())}
                 ).write_parquet(tmp / "synthetic-sectors.parquet")
    return tmp / "synthetic.parquet", tmp / "synthetic-sectors.parquet"


def measure(case: str, prices: Path, sectors: Path, workers: int | None = None
            ) -> dict[str, Any]:
    extra = [] if workers is None else ["--workers", str(workers)]
    out = subprocess.run([sys.executable, __file__, "--case", case, "--prices", str(prices),
                          "--sectors", str(sectors), *extra],
                         capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["cells_per_s"] = result["features"] * result["rows"] / result["seconds"]
    result["cells_per_cpu_s"] = result["features"] * result["rows"] / result["cpu_seconds"]
    result["load"] = _loadavg()
    return result


def _median_run(done: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median wall time (the lower middle one of an even count)."""
    return sorted(done, key=lambda r: r["seconds"])[(len(done) - 1) // 2]


def _spread(done: list[dict[str, Any]]) -> str:
    """Every run's wall time, when there are several."""
    if len(done) < 2:
        return ""
    return " [runs: " + ", ".join(f"{r['seconds']:.2f}" for r in done) + " s]"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--case", choices=["baseline", "aurora", "incremental"])
    parser.add_argument("--prices")
    parser.add_argument("--sectors")
    parser.add_argument("--symbols", type=int, default=3000)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="500 symbols x 3 years")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--stages", action="store_true", help="per-stage timing of the build")
    parser.add_argument("--repeats", type=int, default=1,
                        help="runs of each case, in rounds; the median run of each is reported")
    args = parser.parse_args()
    args.repeats = max(1, args.repeats)
    if args.quick:
        args.symbols, args.years = 500, 3
    if args.case:
        run_case(args.case, args.prices, args.sectors, args.workers)
        return 0
    from aurora.features.parallel import default_workers

    workers = default_workers() if args.workers is None else max(1, args.workers)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        datasets = []
        if (SAMPLE / "prices.parquet").exists():
            datasets.append(("sp500-sample", *sample_inputs(tmp)))
        t = time.perf_counter()
        datasets.append((f"synthetic {args.symbols}x{args.years}y",
                         *synthetic_inputs(tmp, args.symbols, args.years)))
        print(f"(synthetic market generated in {time.perf_counter() - t:.0f}s, not timed)")
        for label, prices, sectors in datasets:
            specs = {"pandas baseline": ("baseline", None),
                     f"aurora {workers} threads": ("aurora", workers),
                     **({"aurora 1 thread": ("aurora", 1)} if workers > 1 else {}),
                     "incremental": ("incremental", workers)}
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in specs}
            for _ in range(args.repeats):  # rounds, so that each case sees the same hours
                for name, (case, case_workers) in specs.items():
                    runs[name].append(measure(case, prices, sectors, case_workers))
            chosen = {name: _median_run(done) for name, done in runs.items()}
            incremental = chosen.pop("incremental")
            cases = list(chosen.items())
            print(f"\n{label}" + (f" (the median of {args.repeats} runs of each case)"
                                   if args.repeats > 1 else ""))
            for name, r in cases:
                print(f"  {name:16s} {r['features']:3.0f} features x {r['rows']:>9,.0f} rows"
                      f" in {r['seconds']:7.2f}s wall ({r['cpu_seconds']:7.2f}s CPU)"
                      f" = {r['cells_per_s'] / 1e6:7.2f} M cells/s,"
                      f" peak RSS {r['peak_mb'] / 1024:5.2f} GB, load {r['load']}"
                      f" (untimed warm-up {r['warm_up']:.2f}s)" + _spread(runs[name]))
            base = cases[0][1]
            for name, ours in cases[1:]:
                ratio = ours["cells_per_s"] / base["cells_per_s"]
                cpu_ratio = ours["cells_per_cpu_s"] / base["cells_per_cpu_s"]
                peak = ours["peak_mb"] / 1024
                print(f"  ratio {name}/baseline per feature-cell: {ratio:.1f}x wall,"
                      f" {cpu_ratio:.1f}x CPU (target >= 15x); peak {peak:.2f} GB"
                      " (limit 4 GB)")
                if args.stages:
                    print("    stages (wall/CPU s, all threads): " + ", ".join(
                        f"{k} {w:.2f}/{c:.2f}" for k, (w, c) in ours["stages"].items()))
            full = cases[1][1]["seconds"]
            print(f"  aurora one-session incremental ({workers} threads): "
                  f"{incremental['seconds']:.2f}s wall ({incremental['cpu_seconds']:.2f}s CPU)"
                  f" for {incremental['rows']:,} new rows = {incremental['seconds'] / full:.1%}"
                  " of the full build (target <= 2%)" + _spread(runs["incremental"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
