"""Intraday bars: fetched into a store of their own per timeframe, validated against the
session's minutes and the daily bar (`fetch`, `store`, `validate`), and summed up per day
into the intraday features' fields (`daily`).

The names below load their module on first use, so that a build, which reads only
`daily` and `store`, does not load the HTTP client of `fetch`.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "IntradayReport": "fetch", "fetch_intraday": "fetch",
    "TIMEFRAMES": "store", "check_intraday_timeframe": "store", "intraday_store": "store",
    "read_intraday": "store",
    "IntradayValidation": "validate", "validate_intraday": "validate",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
