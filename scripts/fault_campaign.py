#!/usr/bin/env python3
"""Run Aurora's fault-injection campaign (tests/faults/campaign.py) and print its counts.

    .venv/bin/python scripts/fault_campaign.py [--points 6] [--api 12] [--budget 1800]
        [--only kill,enospc,api,disk_full] [--seed 20261130]

Every trial runs a real `aurora` command in a subprocess against the test-bed emulator on
127.0.0.1 with one fault (SIGKILL or ENOSPC at a sampled file operation, random API faults,
or a real full disk on a small tmpfs when this machine allows mounting one), then checks
that `latest` and every published version still verify, that a failure said one line, and
that a clean rerun gives the same outputs as an uninterrupted run. Exit 1 if any trial lost
data. The CI test (tests/faults/test_campaign.py) runs a smaller campaign.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "faults"))

from campaign import (
    COMMANDS,
    END,
    KEY_ID,
    SECRET,
    START,
    SYMBOLS,
    Bed,
    Tally,
    api_campaign,
    disk_full_campaign,
    file_campaign,
)

from aurora_testbed.emulator import EmulatorServer, MarketData


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=6,
                        help="kill and ENOSPC points per command")
    parser.add_argument("--api", type=int, default=12, help="fetches under API faults")
    parser.add_argument("--budget", type=float, default=1800.0, help="seconds in all")
    parser.add_argument("--only", default="kill,enospc,api,disk_full")
    parser.add_argument("--seed", type=int, default=20261130)
    args = parser.parse_args(argv)
    kinds = set(args.only.split(","))
    tally, rng = Tally(), random.Random(args.seed)
    deadline = time.monotonic() + args.budget
    started = time.monotonic()
    market = MarketData.synthetic(SYMBOLS, START, END, seed=5)
    with tempfile.TemporaryDirectory() as root, \
            EmulatorServer(market, {KEY_ID: SECRET}, rate_limit_per_minute=100_000) as server:
        bed = Bed(Path(root), server.url)
        bed.make_baseline()
        if kinds & {"kill", "enospc"}:
            file_campaign(bed, tally, rng, commands=list(COMMANDS), points=args.points,
                          deadline=deadline, kinds=tuple(k for k in ("kill", "enospc")
                                                         if k in kinds))
        if "api" in kinds:
            api_campaign(bed, server, tally, rng, trials=args.api, deadline=deadline)
        mounted = True
        if "disk_full" in kinds:
            mounted = disk_full_campaign(bed, tally, commands=["fetch", "build", "predict",
                                                               "import"],
                                         margins=(4_096, 65_536, 1_048_576), deadline=deadline)
    print(f"fault campaign ({time.monotonic() - started:.0f} s): {tally.line()}"
          + ("" if mounted else "; no tmpfs could be mounted: full-disk trials skipped"))
    for problem in tally.problems:
        print(f"  LOST: {problem}")
    return 1 if tally.data_lost else 0


if __name__ == "__main__":
    sys.exit(main())
