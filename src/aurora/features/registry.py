"""The feature registry: the 45 features of the panel, declared as expressions.

`REGISTRY` lists them in output-column order (price, volume, cross-sectional, residual),
from `aurora.features.catalog`. Each one's look-back is derived from its expression, and
`MAX_LOOKBACK` (the warm-up before a symbol's first emitted row) from those.
`REGISTRY_VERSION` changes whenever a name, family, formula or expression changes, so a
features file records exactly which definitions produced it.

`INTRADAY` is the intraday family, outside the 45: computed from each day's minute bars
(`aurora.intraday.daily`), so only a build that asks for it (`build.intraday`, `aurora build
--intraday`) has it; its definitions are part of `INTRADAY_VERSION`, recorded beside.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence

from aurora.features.catalog import CATALOG, INTRADAY, Family, Feature
from aurora.features.expr import Expr

__all__ = [
    "EXPECTED_COUNTS",
    "FAMILIES",
    "FEATURE_NAMES",
    "INTRADAY",
    "INTRADAY_VERSION",
    "MAX_LOOKBACK",
    "REGISTRY",
    "REGISTRY_VERSION",
    "Feature",
    "family_counts",
    "feature_set",
    "spec",
]

FAMILIES: tuple[Family, ...] = ("price", "volume", "cross_sectional", "residual")
REGISTRY: tuple[Feature, ...] = CATALOG
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in REGISTRY)
EXPECTED_COUNTS: dict[Family, int] = {
    "price": 15, "volume": 10, "cross_sectional": 12, "residual": 8,
}
MAX_LOOKBACK: int = max(f.lookback for f in REGISTRY)
_BY_NAME = {f.name: f for f in (*REGISTRY, *INTRADAY)}


def spec(name: str) -> Feature:
    """The feature `name` of the registry or the intraday family (KeyError if unknown)."""
    return _BY_NAME[name]


def family_counts(features: Sequence[Feature] = REGISTRY) -> dict[str, int]:
    """Number of features per family, keyed by family, in FAMILIES order (the intraday
    family, then user features, last when there are any)."""
    counts = Counter(f.family for f in features)
    out = {f: counts.get(f, 0) for f in FAMILIES}
    for extra in ("intraday", "user"):
        if counts.get(extra):
            out[extra] = counts[extra]
    return out


def _version(features: Sequence[Feature]) -> str:
    digest = hashlib.sha256()
    for f in features:
        digest.update(f"{f.name}|{f.family}|{f.lookback}|{f.expr!r}|{f.formula}\n".encode())
    return f"2.{len(features)}.{digest.hexdigest()[:12]}"


REGISTRY_VERSION: str = _version(REGISTRY)
INTRADAY_VERSION: str = _version(INTRADAY)


def feature_set(extra: Mapping[str, Expr] | None = None) -> dict[str, Expr]:
    """The registry's expressions by name, then `extra` (user features)."""
    return {**{f.name: f.expr for f in REGISTRY}, **dict(extra or {})}
