"""The build stage: the feature panel (operators, registry, computation, gates, publication).

Notebook use without a store::

    from aurora.features import compute_features
    features = compute_features(prices, sectors=sector_map, fundamentals=fundamentals)

Your own features, with the names of the expression grammar (`docs/user-features.md`)::

    from aurora.features import Corr, Log, Mean, Rank, close, custom, volume
    mine = {"f_liquidity_rank": Rank(Log(Mean(close * volume, 20)))}
    features = compute_features(prices, sectors=sector_map, extra=mine)
"""

from aurora.features.builder import BuildResult, build_features, load_inputs
from aurora.features.compute import compute_features, compute_panel
from aurora.features.expr import (
    Abs,
    Coalesce,
    Expr,
    Greater,
    Less,
    Log,
    Power,
    Present,
    Sign,
    Sqrt,
    Where,
    close,
    dollar_volume,
    high,
    intraday_close_vwap_gap,
    intraday_ret_first_30min,
    intraday_ret_last_30min,
    intraday_rv_5min,
    intraday_volume_share_last_30min,
    low,
    open_,
    sector,
    shares_outstanding,
    volume,
    vwap,
)
from aurora.features.gates import GateReport, GateResult, check_lookahead, run_gates
from aurora.features.operators import (
    EMA,
    Beta,
    Corr,
    Cov,
    Delta,
    Demean,
    Kurt,
    Market,
    Max,
    Mean,
    Median,
    Min,
    Quantile,
    Rank,
    Ref,
    Resid,
    Rsquare,
    Skew,
    Slope,
    Std,
    Sum,
    Var,
    Winsorize,
    ZScore,
    custom,
)
from aurora.features.registry import FEATURE_NAMES, REGISTRY, REGISTRY_VERSION, Feature

__all__ = [
    "EMA", "FEATURE_NAMES", "REGISTRY", "REGISTRY_VERSION", "Abs", "Beta", "BuildResult",
    "Coalesce", "Corr", "Cov", "Delta", "Demean", "Expr", "Feature", "GateReport",
    "GateResult", "Greater", "Kurt", "Less", "Log", "Market", "Max", "Mean", "Median", "Min",
    "Power", "Present", "Quantile", "Rank", "Ref", "Resid", "Rsquare", "Sign", "Skew", "Slope",
    "Sqrt", "Std", "Sum", "Var", "Where", "Winsorize", "ZScore", "build_features",
    "check_lookahead", "close", "compute_features", "compute_panel", "custom",
    "dollar_volume", "high", "intraday_close_vwap_gap", "intraday_ret_first_30min",
    "intraday_ret_last_30min", "intraday_rv_5min", "intraday_volume_share_last_30min",
    "load_inputs", "low", "open_", "run_gates", "sector", "shares_outstanding", "volume",
    "vwap",
]
