"""The daily user's wait: the whole `aurora build` command after a one-session fetch.

    .venv/bin/python benchmarks/bench_daily.py [--sample DIR] [--repeats 5]
    .venv/bin/python benchmarks/bench_daily.py --synthetic 3000 10 [--repeats 3]

Steps, on a fresh store in a temporary directory:
1. serve the S&P 500 sample through the Alpaca emulator (`scripts/sp500_sample.py`'s
   dividends, so the corporate actions are real) and fetch every session but the last one;
   import the sector map and fundamentals; run `aurora build` (a full build) as a command;
2. fetch again up to the last session: the store gains one session;
3. copy the data directory, then time `aurora build` as a subprocess, start-up, reading,
   gates and writing included, `--repeats` times, each on a fresh copy of that directory.

--synthetic SYMBOLS YEARS: the same on `aurora_testbed.synthetic`'s market of SYMBOLS
symbols x YEARS years (splits and dividends; Aurora's default sectors, no fundamentals)
instead of the sample: the daily wait of a user at that scale.

Aurora's modules are byte-compiled first (`compileall`), as an installed wheel's are: an
editable install under PYTHONDONTWRITEBYTECODE=1 would otherwise compile every module of the
command on every run (about 0.2 s here).

Prints each run's wall time, the median and the build mode the summary reports (it must be
incremental, one new session). A baseline in the same run: the same command with `--full`,
and `python -c pass` (the interpreter's own start-up).
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
from pydantic import SecretStr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from sp500_sample import DEFAULT_SAMPLE, dividends_from_adj_close  # noqa: E402

from aurora.config import AlpacaConfig, AuroraConfig, ValidationConfig  # noqa: E402
from aurora.fetch import fetch_prices  # noqa: E402
from aurora.reference import import_fundamentals, import_sector_map  # noqa: E402
from aurora.store import Store  # noqa: E402
from aurora.universe import load_universe  # noqa: E402
from aurora_testbed.emulator import EmulatorServer, MarketData  # noqa: E402

AURORA = [str(Path(sys.executable).parent / "aurora")]


def prepare(sample: Path, data_dir: Path) -> str:
    """Steps 1 and 2; returns the last session's date."""
    raw = pl.read_parquet(sample / "prices.parquet")
    market = MarketData(raw.drop("adj_close"), dividends_from_adj_close(raw),
                        source=str(sample / "prices.parquet"))
    universe = load_universe(sample / "universe.txt", sectors={})
    sessions = raw["date"].unique().sort()
    key_id, secret = f"BENCH{secrets.token_hex(6).upper()}", secrets.token_urlsafe(24)
    with EmulatorServer(market, {key_id: secret}, rate_limit_per_minute=100_000) as server:
        config = AuroraConfig(
            data_dir=data_dir,
            alpaca=AlpacaConfig(key_id=SecretStr(key_id), secret_key=SecretStr(secret),
                                data_url=server.url, base_url=server.url),
            validation=ValidationConfig(severities={"large_move": "warning"}),
        )
        config = config.model_copy(update={"fetch": config.fetch.model_copy(
            update={"rate_limit_per_minute": 100_000})})
        fetch_prices(config, universe=universe, start=sessions[0], end=sessions[-2])
        store = Store(data_dir)
        import_sector_map(store, sample / "sector_map.parquet")
        import_fundamentals(store, sample / "fundamentals.parquet")
        build(data_dir)
        fetch_prices(config, universe=universe, start=sessions[0], end=sessions[-1])
    return str(sessions[-1])


def prepare_synthetic(symbols: int, years: int, data_dir: Path) -> str:
    """Steps 1 and 2 on a synthetic market; returns the last session's date."""
    import datetime as dt

    from aurora.universe import as_universe

    end = dt.date(2024, 12, 31)
    names = [f"S{i:04d}" for i in range(symbols)]
    market = MarketData.synthetic(names, dt.date(end.year - years + 1, 1, 1), end, seed=7)
    sessions = market.bars["date"].unique().sort()
    key_id, secret = f"BENCH{secrets.token_hex(6).upper()}", secrets.token_urlsafe(24)
    with EmulatorServer(market, {key_id: secret}, rate_limit_per_minute=100_000) as server:
        config = AuroraConfig(
            data_dir=data_dir,
            alpaca=AlpacaConfig(key_id=SecretStr(key_id), secret_key=SecretStr(secret),
                                data_url=server.url, base_url=server.url),
            validation=ValidationConfig(severities={"large_move": "warning"}),
        )
        config = config.model_copy(update={"fetch": config.fetch.model_copy(
            update={"rate_limit_per_minute": 100_000})})
        universe = as_universe(names, source="bench_daily --synthetic")
        fetch_prices(config, universe=universe, start=sessions[0], end=sessions[-2])
        build(data_dir)
        fetch_prices(config, universe=universe, start=sessions[0], end=sessions[-1])
    return str(sessions[-1])


def build(data_dir: Path, *extra: str) -> tuple[float, str]:
    """Run `aurora build` as a command; (wall seconds, its output)."""
    env = {**os.environ, "AURORA_DATA_DIR": str(data_dir), "AURORA_CONFIG": os.devnull,
           "COLUMNS": "120"}
    t0 = time.perf_counter()
    done = subprocess.run([*AURORA, "build", *extra], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"aurora build failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return wall, done.stdout + done.stderr


def timed_runs(ready: Path, scratch: Path, repeats: int, *extra: str) -> tuple[list[float], str]:
    walls, output = [], ""
    for k in range(repeats):
        run_dir = scratch / f"run{k}"
        shutil.copytree(ready, run_dir, symlinks=True)
        wall, output = build(run_dir, *extra)
        walls.append(wall)
        shutil.rmtree(run_dir)
    return walls, output


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=Path, default=DEFAULT_SAMPLE)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--synthetic", type=int, nargs=2, metavar=("SYMBOLS", "YEARS"),
                        default=None, help="a synthetic market instead of the sample")
    parser.add_argument("--keep", type=Path, default=None,
                        help="copy the prepared data directory (before the timed build) here")
    args = parser.parse_args()
    compileall.compile_dir(ROOT / "src", quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        ready = scratch / "ready"
        last = (prepare_synthetic(*args.synthetic, ready) if args.synthetic
                else prepare(args.sample, ready))
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        interpreter = time.perf_counter() - t0
        walls, output = timed_runs(ready, scratch, args.repeats)
        if args.keep:
            shutil.copytree(ready, args.keep, symlinks=True)
        mode = re.search(r"(incremental|full build)[^\n]*", output)
        fulls, _ = timed_runs(ready, scratch, max(1, args.repeats // 2), "--full")
    label = (f"synthetic {args.synthetic[0]} x {args.synthetic[1]} years" if args.synthetic
             else "S&P 500 sample")
    print(f"{label}, one new session ({last}); load average {os.getloadavg()[0]:.2f}")
    print(f"  python -c pass:              {interpreter:6.2f} s")
    print(f"  aurora build (daily):        {statistics.median(walls):6.2f} s median of "
          f"{len(walls)}: {', '.join(f'{w:.2f}' for w in walls)}  [{mode[0] if mode else '?'}]")
    print(f"  aurora build --full:         {statistics.median(fulls):6.2f} s median of "
          f"{len(fulls)}: {', '.join(f'{w:.2f}' for w in fulls)}")
    print("  daily build output:")
    print("\n".join("    " + line for line in output.strip().splitlines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
