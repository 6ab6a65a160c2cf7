"""Benchmark Aurora's feature build against Qlib's Alpha158 and the pandas idiom, same bars.

    .venv/bin/pip install -c requirements-dev.lock -e '.[bench]'    # once: pyqlib
    .venv/bin/python benchmarks/bench_qlib.py --dataset sp500
    .venv/bin/python benchmarks/bench_qlib.py --dataset synthetic [--symbols 3000] [--years 10]
        [--quick] [--workers N] [--kernels N] [--qlib-timeout SECONDS]

--dataset sp500: ../shared/data/sp500-sample (130 symbols x 4 years, real bars adjusted with
adj_close / close). --dataset synthetic: aurora_testbed.synthetic.generate_market, split and
dividend adjusted, --symbols x --years (default 3000 x 10; --quick: 300 x 3). Both inputs are
made by bench_features.py's `sample_inputs` / `synthetic_inputs`: every case reads the same
parquet of bars (date, symbol, open, high, low, close, volume; no vwap).
--workers: Aurora's block-stage threads (default: the library default, the CPU count capped
at 4); when more than 1, Aurora with workers=1 is measured too.
Qlib is run three ways (joblib's "multiprocessing" backend, Qlib's default, one task per
symbol): with its default kernels (`max(cpu_count - 2, 1)`: 1 on a 2-core machine), with
kernels=1 (in process, no pool) and with --kernels processes (default: the CPU count); a
setting equal to an earlier one is not run twice. The kernels each run used is printed.
--qlib-timeout: give up on a Qlib case after this many seconds (reported, not fatal).

Cases, each in its own subprocess so its peak RSS is clean:
  pandas:  bench_features.py's `baseline` (the seed's groupby/transform idiom, 6 features),
           run by bench_features.measure, unchanged.
  aurora:  bench_features.py's `aurora`: `compute_panel`, i.e. `compute_features` (all 45
           features, rows past the warm-up only), run by bench_features.measure, unchanged.
  qlib:    Alpha158's 158 feature expressions (`Alpha158DL.get_feature_config()`, the feature
           config of qlib.contrib.data.handler.Alpha158; no label, no processors) through
           `D.features(D.instruments("all"), fields, first session, last session)` on a
           provider directory that benchmarks/qlib_layout.py writes from the same parquet
           (untimed; its time is printed). Qlib returns every session of each symbol's span
           as float32; its rolling operators use partial windows (min_periods=1), so the
           rows inside look-backs are mostly not NaN. In the case's process, untimed:
           qlib.init (it imports mlflow; its time is printed) with no expression or dataset
           disk cache, and a warm-up D.features call on 5 symbols, after which Qlib's
           in-memory cache is cleared.
Throughput is feature-cells per second: features x rows produced / seconds. CPU seconds are
user + sys of the case's process, all threads, plus (Qlib) its reaped worker processes; peak
RSS is the case process's; for Qlib with a pool, the largest worker's peak is printed too
(RSS counts the pages a forked worker shares with its parent). Ratios Aurora/Qlib and
Aurora/pandas are per feature-cell, by wall and by CPU time, measured in the same run; the
load average is printed at each measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from bench_features import SAMPLE, _loadavg, measure, peak_rss_mb, sample_inputs, synthetic_inputs
from qlib_layout import write_qlib_layout

WARM_UP_SYMBOLS = 5


def _cpu_with_children() -> float:
    """User + sys seconds of this process (all threads) and of its reaped children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run_qlib(provider: str, kernels: int | None) -> None:
    """The Qlib case (in its own process): prints one JSON line."""
    t = time.perf_counter()
    import qlib
    from qlib.config import C
    from qlib.contrib.data.loader import Alpha158DL
    from qlib.data import D
    from qlib.data.cache import H

    qlib.init(provider_uri=provider, region="us", expression_cache=None, dataset_cache=None,
              **({} if kernels is None else {"kernels": kernels}))
    init = time.perf_counter() - t
    fields, names = Alpha158DL.get_feature_config()
    calendar = D.calendar(freq="day")
    start, end = calendar[0], calendar[-1]
    symbols = D.list_instruments(D.instruments("all"), as_list=True)
    t = time.perf_counter()
    _ = D.features(sorted(symbols)[:WARM_UP_SYMBOLS], fields, start_time=start, end_time=end)
    warm_up = time.perf_counter() - t
    H.clear()  # nothing the warm-up computed is reused
    cpu0 = _cpu_with_children()
    t = time.perf_counter()
    out = D.features(D.instruments("all"), fields, start_time=start, end_time=end)
    seconds = time.perf_counter() - t
    cpu = _cpu_with_children() - cpu0
    peak_mb = peak_rss_mb()
    worker_peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    nan, inf = [], []
    for column in out.columns:  # column by column: no second copy of a large frame
        values = out[column].to_numpy()
        nan.append(int(np.isnan(values).sum()))
        inf.append(int(np.isinf(values).sum()))
    print(json.dumps({
        "features": len(fields), "rows": len(out), "seconds": seconds, "cpu_seconds": cpu,
        "warm_up": warm_up, "init": init, "peak_mb": peak_mb, "worker_peak_mb": worker_peak_mb,
        "kernels": C.get_kernels("day"), "joblib_backend": C.joblib_backend,
        "dtype": str(out.dtypes.iloc[0]), "symbols": len(symbols),
        "nan_cells": sum(nan), "inf_cells": sum(inf),
        "all_nan": [n for n, k in zip(names, nan, strict=True) if k == len(out)],
        "most_inf": sorted(((n, k) for n, k in zip(names, inf, strict=True) if k),
                           key=lambda x: -x[1])[:6],
    }))


_PREFIX = re.compile(r"^\[\d+:[^\]]*\]\([^)]*\) ")


def _warnings(stderr: str) -> list[tuple[str, int]]:
    """Distinct warning lines of a case's stderr (Qlib's log prefix stripped), with counts."""
    lines = [_PREFIX.sub("", line).strip() for line in stderr.splitlines()
             if "WARN" in line or "Warning" in line]
    return Counter(lines).most_common()


def measure_qlib(provider: Path, kernels: int | None, timeout: float | None) -> dict[str, Any]:
    extra = [] if kernels is None else ["--kernels", str(kernels)]
    cmd = [sys.executable, __file__, "--case", "qlib", "--provider", str(provider), *extra]
    t = time.perf_counter()
    # its own session: on a timeout the case and Qlib's worker processes are killed together
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {"timeout": time.perf_counter() - t, "load": _loadavg()}
    if proc.returncode:
        sys.stderr.write(stderr[-4000:])
        raise SystemExit(f"qlib case failed ({proc.returncode}): {' '.join(cmd)}")
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    result["cells_per_s"] = result["features"] * result["rows"] / result["seconds"]
    result["cells_per_cpu_s"] = result["features"] * result["rows"] / result["cpu_seconds"]
    result["load"] = _loadavg()
    result["warnings"] = _warnings(stderr)
    return result


def _line(name: str, r: dict[str, Any]) -> str:
    if "timeout" in r:
        return f"  {name:22s} gave up after {r['timeout']:.0f}s (--qlib-timeout), load {r['load']}"
    extra = f"untimed warm-up {r['warm_up']:.2f}s"
    if "init" in r:
        extra += f", qlib.init {r['init']:.2f}s"
    if r.get("worker_peak_mb"):
        extra += f", largest worker peak {r['worker_peak_mb'] / 1024:.2f} GB"
    return (f"  {name:22s} {r['features']:3.0f} features x {r['rows']:>9,.0f} rows"
            f" in {r['seconds']:8.2f}s wall ({r['cpu_seconds']:8.2f}s CPU)"
            f" = {r['cells_per_s'] / 1e6:7.2f} M cells/s ({r['cells_per_cpu_s'] / 1e6:6.2f}"
            f" per CPU s), peak RSS {r['peak_mb'] / 1024:5.2f} GB, load {r['load']} ({extra})")


def _ratio(ours: dict[str, Any], theirs: dict[str, Any]) -> str:
    if "timeout" in ours or "timeout" in theirs:
        return "n/a (timed out)"
    wall = ours["cells_per_s"] / theirs["cells_per_s"]
    cpu = ours["cells_per_cpu_s"] / theirs["cells_per_cpu_s"]
    return f"{wall:6.1f}x wall, {cpu:6.1f}x CPU"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--case", choices=["qlib"])
    parser.add_argument("--provider")
    parser.add_argument("--dataset", choices=["sp500", "synthetic"], default="sp500")
    parser.add_argument("--symbols", type=int, default=3000)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="synthetic 300 symbols x 3 years")
    parser.add_argument("--workers", type=int, default=None, help="Aurora's threads")
    parser.add_argument("--kernels", type=int, default=None, help="Qlib's processes")
    parser.add_argument("--qlib-timeout", type=float, default=None)
    args = parser.parse_args()
    if args.case:
        run_qlib(args.provider, args.kernels)
        return 0
    if args.quick:
        args.dataset, args.symbols, args.years = "synthetic", 300, 3
    from aurora.features.parallel import default_workers

    workers = default_workers() if args.workers is None else max(1, args.workers)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        t = time.perf_counter()
        if args.dataset == "sp500":
            if not (SAMPLE / "prices.parquet").exists():
                raise SystemExit(f"no sample at {SAMPLE}")
            label = "sp500-sample"
            prices, sectors = sample_inputs(tmp)
        else:
            label = f"synthetic {args.symbols}x{args.years}y"
            prices, sectors = synthetic_inputs(tmp, args.symbols, args.years)
        made = time.perf_counter() - t
        t = time.perf_counter()
        layout = write_qlib_layout(pl.read_parquet(prices), tmp / "qlib")
        wrote = time.perf_counter() - t
        print(f"{label}: {layout.symbols} symbols, {layout.sessions} sessions "
              f"({layout.first} to {layout.last}), {layout.bars:,} bars; inputs made in "
              f"{made:.1f}s, Qlib layout ({', '.join(layout.fields)}) written in {wrote:.1f}s"
              " (both untimed)", flush=True)
        cases: dict[str, dict[str, Any]] = {}

        def run(name: str, result: dict[str, Any]) -> None:
            cases[name] = result
            print(_line(name, result), flush=True)

        run("pandas baseline", measure("baseline", prices, sectors))
        run(f"aurora {workers} threads", measure("aurora", prices, sectors, workers))
        if workers > 1:
            run("aurora 1 thread", measure("aurora", prices, sectors, 1))
        default = measure_qlib(tmp / "qlib", None, args.qlib_timeout)
        k = default.get("kernels", "?")
        run(f"qlib default (kernels={k})", default)
        multi = args.kernels or os.cpu_count() or 1
        for n in sorted({1, multi} - {k}):
            run(f"qlib kernels={n}", measure_qlib(tmp / "qlib", n, args.qlib_timeout))
        done = [r for n, r in cases.items() if n.startswith("qlib") and "timeout" not in r]
        if done:
            q = done[0]
            print(f"  qlib: joblib backend {q['joblib_backend']!r}; output {q['dtype']},"
                  f" {q['nan_cells'] / (q['features'] * q['rows']):.1%} of cells NaN,"
                  f" {q['inf_cells']:,} inf; all-NaN features: {', '.join(q['all_nan']) or '-'};"
                  f" most inf: {', '.join(f'{n} {c:,}' for n, c in q['most_inf']) or '-'}")
            for line, count in q["warnings"][:8]:
                print(f"  qlib warning x{count}: {line[:160]}")
        print("  ratios per feature-cell:")
        for ours in [n for n in cases if n.startswith("aurora")]:
            for theirs in [n for n in cases if not n.startswith("aurora")]:
                print(f"    {ours} / {theirs}: {_ratio(cases[ours], cases[theirs])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
