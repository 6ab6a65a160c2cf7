"""Benchmark: `aurora fetch --timeframe 1Min` against alpaca-py on the same emulator, one run.

    .venv/bin/python benchmarks/bench_intraday.py                # 130 symbols x 12 months
    .venv/bin/python benchmarks/bench_intraday.py --months 1 --only aurora-fetch alpaca-py-raw

The emulator serves the synthetic market's minute bars (extended hours included) from this
process on 127.0.0.1 with a rate limit of 10,000 requests a minute (Alpaca's paid plan);
each contender runs in its own subprocess, so its peak RSS is its own. Requests are counted
from the emulator's request log; the minimum is ceil(bars / 10,000), the fewest pages
that can carry the bars. Contenders:

- aurora-fetch:  fetch_intraday(config, "1Min") into a temporary data directory: the plan,
                 paging, checkpoints, validation and publication of one part per day;
- alpaca-py-raw: StockHistoricalDataClient(url_override=..., raw_data=True)
                 .get_stock_bars(TimeFrame.Minute) for all symbols at once (plain dicts,
                 its cheapest path; its models and .df cost more).

Printed per contender: wall and CPU seconds, requests and the minimum, bars, peak RSS, and
ratios against alpaca-py-raw when it ran.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

NY = ZoneInfo("America/New_York")
KEY, SECRET = "PKBENCHKEY", "bench-secret-value"
CONTENDERS = ("aurora-fetch", "alpaca-py-raw")


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker(name: str, url: str, symbols: list[str], start: dt.date, end: dt.date) -> dict:
    """Run one contender in this (fresh) process; return its measurements."""
    if name == "aurora-fetch":
        from aurora.config import AlpacaConfig, AuroraConfig, FetchConfig
        from aurora.intraday import fetch_intraday
    else:
        from alpaca.data.enums import DataFeed
        from alpaca.data.historical import StockHistoricalDataClient
        from alpaca.data.requests import StockBarsRequest
        from alpaca.data.timeframe import TimeFrame
    baseline = _rss_mib()
    cpu_started = _cpu()
    started = time.perf_counter()
    extra = {}
    if name == "aurora-fetch":
        with tempfile.TemporaryDirectory() as tmp:
            cfg = AuroraConfig(
                data_dir=Path(tmp) / "data",
                alpaca=AlpacaConfig(key_id=KEY, secret_key=SECRET, data_url=url,
                                    base_url=url),
                fetch=FetchConfig(rate_limit_per_minute=10_000))
            report = fetch_intraday(cfg, "1Min", universe=symbols, start=start, end=end)
            bars, extra = report.bars, {"groups": report.groups,
                                        "group_minimum": report.minimum_requests,
                                        "findings": report.validation.warnings()}
    else:
        client = StockHistoricalDataClient(KEY, SECRET, url_override=url, raw_data=True)
        request = StockBarsRequest(
            symbol_or_symbols=symbols, timeframe=TimeFrame.Minute, feed=DataFeed.SIP,
            start=dt.datetime.combine(start, dt.time(0), NY),
            end=dt.datetime.combine(end, dt.time(23, 59, 59), NY))
        result = client.get_stock_bars(request)
        bars = sum(len(v) for v in result.values())
    return {"wall": time.perf_counter() - started, "cpu": _cpu() - cpu_started, "bars": bars,
            "peak_rss_mib": _rss_mib(), "import_rss_mib": baseline, **extra}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--months", type=int, default=12, help="months of 2023 to fetch")
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

    from aurora.universe import default_universe
    from aurora_testbed.emulator import EmulatorServer, MarketData

    symbols = list(default_universe().symbols)
    start = dt.date(2023, 1, 1)
    end = dt.date(2023 + args.months // 12, args.months % 12 + 1, 1) - dt.timedelta(days=1)
    market = MarketData.synthetic(symbols, dt.date(2022, 12, 1), end)
    print(f"synthetic market: {len(symbols)} symbols, 1Min bars of {start}..{end}",
          file=sys.stderr)
    results: dict[str, dict] = {}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APCA_", "AURORA_"))}
    with EmulatorServer(market, {KEY: SECRET}, rate_limit_per_minute=10_000) as server:
        spec = json.dumps({"url": server.url, "symbols": symbols, "start": start.isoformat(),
                           "end": end.isoformat()})
        for name in args.only:
            server.clear_log()
            out = subprocess.run([sys.executable, __file__, "--worker", name, "--spec", spec],
                                 capture_output=True, text=True, env=env, check=False)
            if out.returncode != 0:
                last = out.stderr.strip().splitlines()[-3:]
                results[name] = {"failed": " | ".join(line.strip() for line in last)}
                continue
            run = json.loads(out.stdout.strip().splitlines()[-1])
            run["requests"] = len(server.request_log)
            results[name] = run
    base = results.get("alpaca-py-raw")
    base = base if base and "failed" not in base else None
    print(f"{'contender':<15}{'wall s':>8}{'cpu s':>8}{'requests':>9}{'minimum':>8}"
          f"{'bars':>12}{'peak MiB':>9}" + (f"{'wall/py':>8}{'cpu/py':>8}{'peak/py':>8}"
                                           if base else ""))
    for name, r in results.items():
        if "failed" in r:
            print(f"{name:<15} FAILED: {r['failed'][-300:]}")
            continue
        minimum = math.ceil(r["bars"] / 10_000)
        line = (f"{name:<15}{r['wall']:>8.1f}{r['cpu']:>8.1f}{r['requests']:>9}{minimum:>8}"
                f"{r['bars']:>12,}{r['peak_rss_mib']:>9.0f}")
        if base:
            line += (f"{r['wall'] / base['wall']:>8.2f}{r['cpu'] / base['cpu']:>8.2f}"
                     f"{r['peak_rss_mib'] / base['peak_rss_mib']:>8.2f}")
        print(line)
        if "groups" in r:
            print(f"  {r['groups']} request groups; their own minimum (ceil of each group's "
                  f"bars / 10,000) is {r['group_minimum']}; findings: "
                  f"{r['findings'] or 'none'}")
    print("wall includes the emulator's serving time (it builds the minutes of each "
          "request's days); cpu is the client process alone.")


if __name__ == "__main__":
    main()
