"""The feature registry: the 45 features of the panel, declared as expressions.

`REGISTRY` lists them in output-column order (price, volume, cross-sectional, residual),
from `aurora.features.catalog`. Each one's look-back is derived from its expression, and
`MAX_LOOKBACK` (the warm-up before a symbol's first emitted row) from those.
`REGISTRY_VERSION` changes whenever a name, family, formula or expression changes, so a
features file records exactly which definitions produced it.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence

from aurora.features.catalog import CATALOG, Family, Feature

__all__ = [
    "EXPECTED_COUNTS",
    "FAMILIES",
    "FEATURE_NAMES",
    "MAX_LOOKBACK",
    "REGISTRY",
    "REGISTRY_VERSION",
    "Feature",
    "family_counts",
    "spec",
]

FAMILIES: tuple[Family, ...] = ("price", "volume", "cross_sectional", "residual")
REGISTRY: tuple[Feature, ...] = CATALOG
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in REGISTRY)
EXPECTED_COUNTS: dict[Family, int] = {
    "price": 15, "volume": 10, "cross_sectional": 12, "residual": 8,
}
MAX_LOOKBACK: int = max(f.lookback for f in REGISTRY)
_BY_NAME = {f.name: f for f in REGISTRY}


def spec(name: str) -> Feature:
    """The feature `name` of the registry (KeyError if unknown)."""
    return _BY_NAME[name]


def family_counts(features: Sequence[Feature] = REGISTRY) -> dict[str, int]:
    """Number of features per family, keyed by family, in FAMILIES order (user features,
    family `user`, last when there are any)."""
    counts = Counter(f.family for f in features)
    out = {f: counts.get(f, 0) for f in FAMILIES}
    if counts.get("user"):
        out["user"] = counts["user"]
    return out


def _version() -> str:
    digest = hashlib.sha256()
    for f in REGISTRY:
        digest.update(f"{f.name}|{f.family}|{f.lookback}|{f.expr!r}|{f.formula}\n".encode())
    return f"2.{len(REGISTRY)}.{digest.hexdigest()[:12]}"


REGISTRY_VERSION: str = _version()
