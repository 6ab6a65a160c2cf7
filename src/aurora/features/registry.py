"""The feature registry: the 45 features of the panel, declared as data.

`REGISTRY` lists them in output-column order (price, volume, cross-sectional, residual).
`REGISTRY_VERSION` changes whenever a name, family, look-back or formula changes, so a
features file records exactly which definitions produced it.
"""

from __future__ import annotations

import hashlib
from collections import Counter

from aurora.features import cross_sectional, price, residual, volume
from aurora.features.spec import FAMILIES, Family, FeatureSpec

__all__ = [
    "CROSS_INPUTS",
    "EXPECTED_COUNTS",
    "FAMILIES",
    "FEATURE_NAMES",
    "MAX_LOOKBACK",
    "REGISTRY",
    "REGISTRY_VERSION",
    "FeatureSpec",
    "family_counts",
    "spec",
]

REGISTRY: tuple[FeatureSpec, ...] = (
    *price.SPECS, *volume.SPECS, *cross_sectional.SPECS, *residual.SPECS
)
FEATURE_NAMES: tuple[str, ...] = tuple(s.name for s in REGISTRY)
EXPECTED_COUNTS: dict[Family, int] = {
    "price": 15, "volume": 10, "cross_sectional": 12, "residual": 8,
}
MAX_LOOKBACK: int = max(s.lookback for s in REGISTRY)
# The features the cross stage reads (kept as full date x symbol matrices by the engine).
CROSS_INPUTS: tuple[str, ...] = (
    "f_ret_1d", "f_ret_5d", "f_ret_20d", "f_mom_12_1", "f_vol_5d", "f_vol_20d",
    "f_volume_surprise", "f_amihud_illiquidity", "f_turnover_20d", "f_log_dollar_volume_20d",
)
_BY_NAME = {s.name: s for s in REGISTRY}


def spec(name: str) -> FeatureSpec:
    """The spec of feature `name` (KeyError if unknown)."""
    return _BY_NAME[name]


def family_counts(specs: tuple[FeatureSpec, ...] = REGISTRY) -> dict[str, int]:
    """Number of features per family, keyed by family, in FAMILIES order."""
    counts = Counter(s.family for s in specs)
    return {f: counts.get(f, 0) for f in FAMILIES}


def _version() -> str:
    digest = hashlib.sha256()
    for s in REGISTRY:
        digest.update(f"{s.name}|{s.family}|{s.lookback}|{s.stage}|{s.formula}\n".encode())
    return f"1.{len(REGISTRY)}.{digest.hexdigest()[:12]}"


REGISTRY_VERSION: str = _version()
