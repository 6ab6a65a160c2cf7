"""Shared fixtures. Tests are offline and deterministic; servers bind to 127.0.0.1 only."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

# Property tests draw the same examples on every run: a CI run never fails on an example no
# earlier run saw (set HYPOTHESIS_PROFILE=explore to search new ones locally).
settings.register_profile("deterministic", derandomize=True, database=None)
settings.register_profile("explore")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))

# Tests must never pick up a developer's credentials or config from the environment.
for _name in list(os.environ):
    if _name.startswith(("APCA_", "AURORA_")):
        del os.environ[_name]


@pytest.fixture()
def data_dir(tmp_path):
    """An empty data directory."""
    path = tmp_path / "data"
    path.mkdir()
    return path
