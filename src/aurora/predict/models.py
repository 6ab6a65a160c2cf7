"""The main model (LightGBM) and the baseline (ridge regression), both deterministic.

Both learn the cross-sectionally z-scored forward return from cross-sectionally z-scored
features (see `dataset.build_panel`), so a score is "expected return, in cross-sectional
standard deviations"; only its order across symbols on one date is used downstream.

- LightGBM: gradient-boosted trees, L2 loss, heavily regularised because daily return
  labels are mostly noise. The defaults (100 depth-1 trees, i.e. num_leaves 2, at least
  1000 rows a leaf, learning rate 0.05) make it a strongly shrunk additive model of
  per-feature step functions: on the evaluation data deeper trees, and more rounds (300,
  600, 1000), fitted noise and lost out-of-sample rank IC (docs/predict.md).
  Deterministic for a seed: `deterministic=True`, `force_col_wise=True`, every random
  stream seeded from `seed`, a fixed thread count.
- Ridge baseline: ordinary least squares with an L2 penalty on the same inputs, missing
  feature values imputed with 0 (the cross-sectional mean after z-scoring). The penalty is
  on the scale of the normalised Gram matrix: w = (X'X/n + alpha I)^-1 X'y/n.
- Factor blend (`predict.factor_weight` > 0): the main score becomes
  (1 - w) x LightGBM / its training std + w x factors / their training std, where
  `factors` is the mean of three documented, unfitted factors on the z-scored features
  (`FACTORS`): 12-1 momentum, short-term (one-month) reversal and low volatility. w = 1
  is the factors alone (no trees are fitted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import lightgbm as lgb
import numpy as np

from aurora.config import PredictConfig
from aurora.errors import DataValidationError


class Fitted(Protocol):
    def predict(self, x: np.ndarray) -> np.ndarray:
        """Scores for the rows of `x` (float64, NaN = missing)."""
        ...


class Model(Protocol):
    name: str

    def parameters(self) -> dict[str, Any]:
        """JSON-serialisable parameters that fully describe the model."""
        ...

    def fit(self, x: np.ndarray, y: np.ndarray) -> Fitted:
        """Fit on features `x` (rows x features, NaN = missing) and target `y`."""
        ...


@dataclass(frozen=True)
class LightGBMModel:
    """LightGBM regression; `params` are LightGBM parameters, `rounds` the number of trees."""

    params: dict[str, Any]
    rounds: int
    name: str = "lightgbm"

    @classmethod
    def from_config(cls, config: PredictConfig) -> LightGBMModel:
        params = {
            "objective": "regression",
            "learning_rate": config.learning_rate,
            "num_leaves": config.num_leaves,
            "min_data_in_leaf": config.min_data_in_leaf,
            "feature_fraction": 0.8,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "lambda_l2": 1.0,
            "max_bin": 63,
            "seed": config.seed,
            "bagging_seed": config.seed,
            "feature_fraction_seed": config.seed,
            "data_random_seed": config.seed,
            "deterministic": True,
            "force_col_wise": True,
            "num_threads": config.num_threads,
            "verbosity": -1,
        }
        return cls(params=params, rounds=config.n_estimators)

    def parameters(self) -> dict[str, Any]:
        return {"n_estimators": self.rounds, **self.params}

    def fit(self, x: np.ndarray, y: np.ndarray) -> Fitted:
        _check(x, y)
        data = lgb.Dataset(x, label=y, params={"max_bin": self.params["max_bin"],
                                               "verbosity": -1})
        booster = lgb.train(self.params, data, num_boost_round=self.rounds)
        return _Booster(booster)


@dataclass(frozen=True)
class _Booster:
    booster: lgb.Booster

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster.predict(x, num_threads=1), dtype=np.float64)


@dataclass(frozen=True)
class RidgeModel:
    """Ridge regression with intercept; NaN features imputed with 0."""

    alpha: float
    name: str = "ridge"

    @classmethod
    def from_config(cls, config: PredictConfig) -> RidgeModel:
        return cls(alpha=config.ridge_alpha)

    def parameters(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "impute": 0.0}

    def fit(self, x: np.ndarray, y: np.ndarray) -> Fitted:
        _check(x, y)
        x = np.nan_to_num(x, nan=0.0)
        n, k = x.shape
        mean_x = x.mean(axis=0)
        mean_y = float(y.mean())
        xc = x - mean_x
        gram = xc.T @ xc / n + self.alpha * np.eye(k)
        weights = np.linalg.solve(gram, xc.T @ (y - mean_y) / n)
        return _Linear(weights, mean_y - float(mean_x @ weights))


@dataclass(frozen=True)
class _Linear:
    weights: np.ndarray
    intercept: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.nan_to_num(x, nan=0.0) @ self.weights + self.intercept


def _check(x: np.ndarray, y: np.ndarray) -> None:
    if x.ndim != 2 or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise ValueError(f"shape mismatch: x {x.shape}, y {y.shape}")
    if x.shape[0] == 0:
        raise ValueError("no training rows")
    if not np.isfinite(y).all():
        raise ValueError("target has non-finite values")


# The documented factors of the blend: feature -> sign (Jegadeesh-Titman 12-1 momentum,
# Jegadeesh 1990 one-month reversal, the low-volatility anomaly of Ang et al. 2006).
FACTORS = {"f_mom_12_1": 1.0, "f_ret_20d": -1.0, "f_vol_60d": -1.0}


@dataclass(frozen=True)
class FactorBlendModel:
    """`weight` of the documented factors' mean (FACTORS, z-scored features at `columns`)
    and 1 - `weight` of `trees`, each divided by its standard deviation on the training
    rows so the weight means a share of the score's spread."""

    trees: LightGBMModel
    weight: float
    columns: tuple[int, ...]
    signs: tuple[float, ...]

    @property
    def name(self) -> str:
        return "factors" if self.weight >= 1 else "lightgbm+factors"

    def parameters(self) -> dict[str, Any]:
        factors = dict(zip(FACTORS, self.signs, strict=True))
        if self.weight >= 1:
            return {"factor_weight": 1.0, "factors": factors}
        return {"factor_weight": self.weight, "factors": factors, **self.trees.parameters()}

    def factor_score(self, x: np.ndarray) -> np.ndarray:
        picked = np.nan_to_num(x[:, list(self.columns)], nan=0.0)
        return picked @ np.asarray(self.signs) / len(self.columns)

    def fit(self, x: np.ndarray, y: np.ndarray) -> Fitted:
        _check(x, y)
        factor_sd = _spread(self.factor_score(x))
        if self.weight >= 1:
            return _Blend(self, None, 1.0, factor_sd)
        fitted = self.trees.fit(x, y)
        return _Blend(self, fitted, _spread(fitted.predict(x)), factor_sd)


def _spread(values: np.ndarray) -> float:
    sd = float(np.std(values))
    return sd if sd > 0 else 1.0  # a constant score ranks nothing: leave its scale


@dataclass(frozen=True)
class _Blend:
    model: FactorBlendModel
    trees: Fitted | None
    trees_sd: float
    factor_sd: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        w = self.model.weight
        score = w * self.model.factor_score(x) / self.factor_sd
        if self.trees is not None:
            score = score + (1 - w) * self.trees.predict(x) / self.trees_sd
        return score


def models_from_config(config: PredictConfig, features: Sequence[str]) -> tuple[Model, Model]:
    """(main model, baseline) as configured, for a matrix of `features` (column order).
    DataValidationError when a factor blend is asked for and a factor is not a feature."""
    trees = LightGBMModel.from_config(config)
    main: Model = trees
    if config.factor_weight > 0:
        missing = [f for f in FACTORS if f not in features]
        if missing:
            raise DataValidationError(
                f"predict.factor_weight = {config.factor_weight} needs the features "
                f"{', '.join(missing)}, which the feature panel lacks")
        main = FactorBlendModel(trees, config.factor_weight,
                                tuple(list(features).index(f) for f in FACTORS),
                                tuple(FACTORS.values()))
    return main, RidgeModel.from_config(config)
