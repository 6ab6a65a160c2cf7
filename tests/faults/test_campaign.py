"""A bounded fault-injection campaign in CI: kills and ENOSPC at sampled file operations of
six commands, random API faults during fetches, and a real full disk (a small tmpfs) where
the machine allows mounting one. No trial may lose data (see campaign.py for what is
checked); the counts are printed. `scripts/fault_campaign.py` runs a bigger one."""

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

BUDGET_SECONDS = 240  # the whole campaign; trials past it are skipped, not failed


@pytest.mark.slow
def test_no_fault_loses_data(tmp_path, capsys):
    market = emulator.MarketData.synthetic(SYMBOLS, START, END, seed=5)
    tally = Tally()
    rng = random.Random(20261130)
    deadline = time.monotonic() + BUDGET_SECONDS
    with emulator.EmulatorServer(market, {KEY_ID: SECRET},
                                 rate_limit_per_minute=100_000) as server:
        bed = Bed(tmp_path, server.url)
        bed.make_baseline()
        file_campaign(bed, tally, rng, commands=["fetch", "build", "predict", "import",
                                                 "rollback", "prune"],
                      points=2, deadline=deadline - 60)
        api_campaign(bed, server, tally, rng, trials=4, deadline=deadline - 30)
        mounted = disk_full_campaign(bed, tally, commands=["fetch", "build"],
                                     margins=(8_192, 262_144), deadline=deadline)
    with capsys.disabled():
        print(f"\nfault campaign: {tally.line()}"
              f"{'' if mounted else ' (no tmpfs here: full-disk trials skipped)'}")
    assert tally.data_lost == 0, tally.problems
    assert tally.trials >= 20 and tally.faults >= 15
