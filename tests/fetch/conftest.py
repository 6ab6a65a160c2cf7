"""Fixtures of the fetch tests. `fetch_fakeapi` (tests/fetch/fakeapi.py) is registered as an
importable module here because the suite runs with --import-mode=importlib (no sys.path)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "fetch_fakeapi", Path(__file__).with_name("fakeapi.py"))
assert _spec is not None and _spec.loader is not None
fakeapi = importlib.util.module_from_spec(_spec)
sys.modules["fetch_fakeapi"] = fakeapi
_spec.loader.exec_module(fakeapi)


@pytest.fixture()
def clock():
    return fakeapi.FakeClock()
