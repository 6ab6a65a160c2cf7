"""Benchmark: Aurora's bars client vs alpaca-py on the same emulator and data, in one run.

    .venv/bin/python benchmarks/bench_fetch.py                 # synthetic 130 symbols x 5 years
    .venv/bin/python benchmarks/bench_fetch.py --sp500         # ../shared/data/sp500-sample
    .venv/bin/python benchmarks/bench_fetch.py --repeat 3

The emulator runs in this process on 127.0.0.1 with a high rate limit (10,000/min), so every
contender measures transfer + parse, not pacing. Each contender first runs once untimed
(`--warmup`), so none pays for the emulator building its cached series. Each contender runs
in its own subprocess so its peak RSS is clean; requests are counted from the emulator's
request log. Contenders:

- aurora-client: AlpacaBarsClient.get_bars in batches of 50 -> one polars frame;
- aurora-fetch:  the whole stage (fetch_prices: plan, fetch, corporate actions, validation,
                 publish) into a temporary data directory;
- alpaca-py:     StockHistoricalDataClient(url_override=...).get_stock_bars(...).df
                 (pydantic models, then a pandas frame);
- alpaca-py-raw: the same with raw_data=True (plain dicts, no frame).

Printed: wall seconds, client CPU seconds, requests, bars, peak RSS (MiB) and "after imports"
RSS, and each contender's wall, CPU and peak-memory ratios against aurora-client. A contender
that crashes (alpaca-py requires `n`/`vw`, which the sp500 sample lacks) is reported as
FAILED with its error and the others still run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

NY = ZoneInfo("America/New_York")
KEY, SECRET = "PKBENCHKEY", "bench-secret-value"
SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "sp500-sample"
CONTENDERS = ("aurora-client", "aurora-fetch", "alpaca-py", "alpaca-py-raw")


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _window(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    return (dt.datetime.combine(start, dt.time(0), NY),
            dt.datetime.combine(end, dt.time(23, 59, 59), NY))


def worker(name: str, url: str, symbols: list[str], start: dt.date, end: dt.date) -> dict:
    """Run one contender in this (fresh) process; return its measurements."""
    if name.startswith("aurora"):
        from aurora.config import AlpacaConfig, AuroraConfig, FetchConfig
        from aurora.fetch import fetch_prices
        from aurora.fetch.client import AlpacaBarsClient
        from aurora.fetch.ratelimit import RateLimiter
        from aurora.universe import Universe
    else:
        from alpaca.data.enums import Adjustment, DataFeed
        from alpaca.data.historical import StockHistoricalDataClient
        from alpaca.data.requests import StockBarsRequest
        from alpaca.data.timeframe import TimeFrame
    baseline = _rss_mib()
    cpu_started = _cpu()
    started = time.perf_counter()
    if name == "aurora-client":
        import polars as pl

        limiter = RateLimiter(100_000)
        with AlpacaBarsClient(url, KEY, SECRET, limiter=limiter) as client:
            frames = [client.get_bars(symbols[i : i + 50], start, end)
                      for i in range(0, len(symbols), 50)]
        bars = pl.concat(frames).height
    elif name == "aurora-fetch":
        with tempfile.TemporaryDirectory() as tmp:
            cfg = AuroraConfig(
                data_dir=Path(tmp) / "data",
                alpaca=AlpacaConfig(key_id=KEY, secret_key=SECRET, data_url=url,
                                    base_url=url),
                fetch=FetchConfig(rate_limit_per_minute=100_000),
                validation={"severities": {"large_move": "warning"}},
            )
            report = fetch_prices(cfg, universe=Universe(tuple(symbols), {}, "bench"),
                                  start=start, end=end, progress=None)
            bars = report.bars
    else:
        client = StockHistoricalDataClient(KEY, SECRET, url_override=url,
                                           raw_data=name == "alpaca-py-raw")
        lo, hi = _window(start, end)
        request = StockBarsRequest(symbol_or_symbols=symbols, timeframe=TimeFrame.Day,
                                   start=lo, end=hi, adjustment=Adjustment.ALL,
                                   feed=DataFeed.SIP)
        result = client.get_stock_bars(request)
        raw = name == "alpaca-py-raw"
        bars = sum(len(v) for v in result.values()) if raw else len(result.df)
    return {"wall": time.perf_counter() - started, "cpu": _cpu() - cpu_started, "bars": bars,
            "peak_rss_mib": _rss_mib(), "import_rss_mib": baseline}


def _market(args: argparse.Namespace):
    from aurora.universe import default_universe
    from aurora_testbed.emulator import MarketData

    if args.sp500:
        if not SAMPLE.exists():
            sys.exit(f"{SAMPLE} not found")
        symbols = (SAMPLE / "universe.txt").read_text().split()
        return MarketData.from_parquet(SAMPLE / "prices.parquet"), symbols, (
            dt.date(2015, 1, 12), dt.date(2018, 12, 31))
    symbols = list(default_universe().symbols)
    start, end = dt.date(2020, 1, 2), dt.date(2024, 12, 31)
    return MarketData.synthetic(symbols, start, end), symbols, (start, end)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sp500", action="store_true", help="serve the real sp500 sample")
    parser.add_argument("--repeat", type=int, default=1, help="runs per contender (median)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed runs per contender first (fills the emulator's cache)")
    parser.add_argument("--only", nargs="*", choices=CONTENDERS, default=list(CONTENDERS))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        spec = json.loads(args.spec)
        print(json.dumps(worker(args.worker, spec["url"], spec["symbols"],
                                dt.date.fromisoformat(spec["start"]),
                                dt.date.fromisoformat(spec["end"]))))
        return

    from aurora_testbed.emulator import EmulatorServer

    market, symbols, (start, end) = _market(args)
    print(f"data: {'sp500 sample' if args.sp500 else 'synthetic'}: {len(symbols)} symbols, "
          f"{start}..{end}, {market.bars.height:,} raw bars", file=sys.stderr)
    results: dict[str, dict] = {}
    with EmulatorServer(market, {KEY: SECRET}, rate_limit_per_minute=10_000) as server:
        spec = json.dumps({"url": server.url, "symbols": symbols, "start": start.isoformat(),
                           "end": end.isoformat()})
        env = {k: v for k, v in os.environ.items() if not k.startswith(("APCA_", "AURORA_"))}
        for name in args.only:
            runs = []
            for _ in range(args.warmup):
                subprocess.run([sys.executable, __file__, "--worker", name, "--spec", spec],
                               capture_output=True, env=env, check=False)
            for _ in range(args.repeat):
                server.clear_log()
                out = subprocess.run(
                    [sys.executable, __file__, "--worker", name, "--spec", spec],
                    capture_output=True, text=True, env=env, check=False)
                if out.returncode != 0:
                    last = out.stderr.strip().splitlines()[-3:]
                    runs.append({"failed": " | ".join(line.strip() for line in last)})
                    break
                run = json.loads(out.stdout.strip().splitlines()[-1])
                run["requests"] = len(server.request_log)
                runs.append(run)
            if "failed" in runs[-1]:
                results[name] = runs[-1]
                continue
            results[name] = {
                "wall": statistics.median(r["wall"] for r in runs),
                "cpu": statistics.median(r["cpu"] for r in runs),
                **{k: runs[-1][k] for k in ("bars", "peak_rss_mib", "import_rss_mib",
                                            "requests")},
            }
    ok = {k: v for k, v in results.items() if "failed" not in v}
    base = ok.get("aurora-client") or next(iter(ok.values()))
    print(f"{'contender':<15}{'wall s':>8}{'cpu s':>8}{'requests':>9}{'bars':>10}"
          f"{'peak MiB':>9}{'imports MiB':>12}{'wall/aur':>9}{'cpu/aur':>9}{'peak/aur':>9}")
    for name, r in results.items():
        if "failed" in r:
            print(f"{name:<15} FAILED: {r['failed'][-300:]}")
            continue
        print(f"{name:<15}{r['wall']:>8.2f}{r['cpu']:>8.2f}{r['requests']:>9}{r['bars']:>10,}"
              f"{r['peak_rss_mib']:>9.0f}{r['import_rss_mib']:>12.0f}"
              f"{r['wall'] / base['wall']:>9.2f}{r['cpu'] / base['cpu']:>9.2f}"
              f"{r['peak_rss_mib'] / base['peak_rss_mib']:>9.2f}")
    print("wall includes the emulator's serving time (shared by all contenders); cpu is the "
          "client process alone (user + system seconds after imports).")

if __name__ == "__main__":
    main()
