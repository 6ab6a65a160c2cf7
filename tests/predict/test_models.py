"""The factor blend (`predict.factor_weight`) on hand-built matrices with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from aurora.config import PredictConfig
from aurora.errors import DataValidationError
from aurora.predict.models import FACTORS, FactorBlendModel, LightGBMModel, models_from_config

NAMES = ["f_other", "f_vol_60d", "f_mom_12_1", "f_ret_20d"]


def _x() -> np.ndarray:
    # columns in NAMES order: other, vol, momentum, one-month return
    return np.array([[9.0, 1.0, 2.0, 0.0],
                     [9.0, -1.0, 0.0, 3.0],
                     [9.0, 0.0, np.nan, 0.0],
                     [9.0, 0.0, -2.0, -3.0]])


def test_factors_alone_are_the_signed_mean_over_its_training_spread():
    main, base = models_from_config(PredictConfig(factor_weight=1.0), NAMES)
    assert isinstance(main, FactorBlendModel) and main.name == "factors"
    assert base.name == "ridge"
    assert main.parameters() == {"factor_weight": 1.0, "factors": FACTORS}
    # momentum +, one-month return -, volatility -; a missing value counts as 0 (the mean)
    raw = np.array([(2 - 0 - 1) / 3, (0 - 3 + 1) / 3, 0.0, (-2 + 3 - 0) / 3])
    fitted = main.fit(_x(), np.zeros(4))
    assert fitted.predict(_x()) == pytest.approx(raw / np.std(raw))


def test_a_blend_mixes_the_trees_and_the_factors_by_their_spreads():
    config = PredictConfig(factor_weight=0.25, n_estimators=5, min_data_in_leaf=1)
    main, _ = models_from_config(config, NAMES)
    assert main.name == "lightgbm+factors"
    assert main.parameters()["factor_weight"] == 0.25
    assert main.parameters()["n_estimators"] == 5
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 4))
    y = x[:, 0] + rng.normal(size=400)
    fitted = main.fit(x, y)
    trees = LightGBMModel.from_config(config).fit(x, y).predict(x)  # deterministic
    factors = main.factor_score(x)
    expected = 0.75 * trees / np.std(trees) + 0.25 * factors / np.std(factors)
    assert fitted.predict(x) == pytest.approx(expected)


def test_no_blend_is_plain_lightgbm_and_a_missing_factor_is_one_line():
    main, _ = models_from_config(PredictConfig(factor_weight=0.0), NAMES)
    assert isinstance(main, LightGBMModel) and main.name == "lightgbm"
    with pytest.raises(DataValidationError, match=r"factor_weight = 0.5 needs the features "
                                                  r"f_mom_12_1, f_ret_20d, f_vol_60d"):
        models_from_config(PredictConfig(factor_weight=0.5), ["f_other"])
