"""A fixed-size fault-injection campaign in CI: a kill and an ENOSPC at a sampled file
operation of each of six commands, four fetches under random API faults, and a real full
disk (a small tmpfs) for fetch and build where the machine allows mounting one. No trial
may lose data (see campaign.py for what is checked). `scripts/fault_campaign.py` runs a
bigger one and prints its counts."""

from __future__ import annotations

import random
import time

import pytest
from campaign import (
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

emulator = pytest.importorskip("aurora_testbed.emulator")

COMMANDS = ["fetch", "build", "predict", "import", "rollback", "prune"]
GUARD_SECONDS = 900  # a hung campaign fails here instead of running on; it takes 2-4 min


@pytest.mark.slow
def test_no_fault_loses_data(tmp_path, capsys):
    market = emulator.MarketData.synthetic(SYMBOLS, START, END, seed=5)
    tally = Tally()
    rng = random.Random(20261130)
    deadline = time.monotonic() + GUARD_SECONDS
    with emulator.EmulatorServer(market, {KEY_ID: SECRET},
                                 rate_limit_per_minute=100_000) as server:
        bed = Bed(tmp_path, server.url)
        bed.make_baseline()
        file_campaign(bed, tally, rng, commands=COMMANDS, points=1, deadline=deadline)
        api_campaign(bed, server, tally, rng, trials=4, deadline=deadline)
        mounted = disk_full_campaign(bed, tally, commands=["fetch", "build"],
                                     margins=(16_384,), deadline=deadline)
    with capsys.disabled():
        print(f"\nfault campaign: {tally.line()}"
              f"{'' if mounted else ' (no tmpfs here: full-disk trials skipped)'}")
    assert tally.data_lost == 0, tally.problems
    planned = 2 * len(COMMANDS) + 4 + (2 if mounted else 0)
    assert tally.trials == planned, f"only {tally.trials} of {planned} trials ran in time"
    assert tally.faults >= len(COMMANDS)  # the kills fire; an ENOSPC in a best-effort write may not
