"""Aurora: Alpaca daily bars -> validated, versioned Parquet store -> features -> predictions.

The notebook front door (`aurora.notebook`, docs/notebook.md)::

    import aurora
    store = aurora.open("data")          # a read-only StoreView pinned to `latest`
    store.prices("AAPL", start="2024-01-02")

`import aurora` itself imports nothing: the names below load `aurora.notebook` (polars,
pydantic) on first use, and never the model, feature-kernel or calendar libraries.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aurora.notebook import StoreView, diff
    from aurora.notebook import open_store as open
    from aurora.versiondiff import VersionDiff

__all__ = ["StoreView", "VersionDiff", "diff", "open"]

_EXPORTS: dict[str, tuple[str, str]] = {
    "open": ("aurora.notebook", "open_store"),
    "diff": ("aurora.notebook", "diff"),
    "StoreView": ("aurora.notebook", "StoreView"),
    "VersionDiff": ("aurora.versiondiff", "VersionDiff"),
}


def __getattr__(name: str) -> Any:
    """Resolve an exported name on first access (PEP 562)."""
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'aurora' has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), attribute)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
