"""Fixtures for the operations tests: tiny stores and a real webhook receiver on 127.0.0.1."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from ops_helpers import Receiver

from aurora.store import Store


@pytest.fixture()
def store(data_dir: Path) -> Store:
    return Store(data_dir)


@pytest.fixture()
def receiver():
    r = Receiver()
    yield r
    r.close()
