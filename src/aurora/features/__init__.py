"""The build stage: the 45-feature panel (registry, computation, gates, publication).

Notebook use without a store::

    from aurora.features import compute_features
    features = compute_features(prices, sectors=sector_map, fundamentals=fundamentals)
"""

from aurora.features.builder import BuildResult, build_features, load_inputs
from aurora.features.compute import compute_features, compute_panel
from aurora.features.gates import GateReport, GateResult, check_lookahead, run_gates
from aurora.features.registry import FEATURE_NAMES, REGISTRY, REGISTRY_VERSION, FeatureSpec

__all__ = [
    "FEATURE_NAMES",
    "REGISTRY",
    "REGISTRY_VERSION",
    "BuildResult",
    "FeatureSpec",
    "GateReport",
    "GateResult",
    "build_features",
    "check_lookahead",
    "compute_features",
    "compute_panel",
    "load_inputs",
    "run_gates",
]
