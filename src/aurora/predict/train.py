"""Train point-in-time and score the universe for one decision date (a pure function).

For decision date D (the session we trade on) the features come from
`feature_date = previous_session(D)`; both inputs are cut at the close of that session
before anything is computed, so data stored after it cannot change the result. Training
rows are the labelled rows of `dataset.training_rows` with cutoff = feature_date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from aurora import calendar
from aurora.config import AuroraConfig
from aurora.errors import DataValidationError
from aurora.predict.dataset import Panel, build_panel, training_rows
from aurora.predict.models import Model, models_from_config


@dataclass(frozen=True)
class ScoreResult:
    """Scores for one decision date.

    `scores`: one row per requested symbol, columns symbol, score (main model, null when
    unscored), baseline_score, rank (1 = best), percentile (100 = best, 0 = worst) and
    reason (null when scored). `model` and `baseline` describe the fitted models.
    """

    decision_date: dt.date
    feature_date: dt.date
    horizon: int
    scores: pl.DataFrame
    model: dict[str, Any]
    baseline: dict[str, Any]


def point_in_time(frame: pl.DataFrame, through: dt.date) -> pl.DataFrame:
    """Rows dated at or before `through` (the last close the decision may see)."""
    return frame.filter(pl.col("date") <= through)


def check_decision_date(decision_date: dt.date) -> dt.date:
    """The feature date of `decision_date`; DataValidationError when D is not a session."""
    if not calendar.is_session(decision_date):
        raise DataValidationError(f"decision date {decision_date} is not an NYSE session")
    return calendar.previous_session(decision_date)


def fit_models(
    panel: Panel, cutoff_session: int, config: AuroraConfig, models: Sequence[Model]
) -> tuple[list[Any], pl.DataFrame]:
    """Fit `models` on the training rows for `cutoff_session`; (fitted models, rows).

    Raises DataValidationError when fewer than `min_train_sessions` feature dates with
    labels are available.
    """
    cfg = config.predict
    rows = training_rows(panel, cutoff_session, embargo=cfg.embargo_sessions,
                         train_sessions=cfg.train_sessions)
    dates = rows["date"].n_unique()
    if dates < cfg.min_train_sessions:
        raise DataValidationError(
            f"not enough labelled history before {panel.clock.days[cutoff_session]}: "
            f"{dates} training session(s), need predict.min_train_sessions = "
            f"{cfg.min_train_sessions}"
        )
    x = matrix(rows, panel.features)
    y = rows["target"].to_numpy().astype(np.float64)
    return [m.fit(x, y) for m in models], rows


def matrix(frame: pl.DataFrame, names: list[str]) -> np.ndarray:
    """Feature matrix (float64, NaN for missing) in `names` order."""
    return frame.select(pl.col(n).cast(pl.Float64) for n in names).to_numpy().astype(np.float64)


def train_and_score(
    features: pl.DataFrame,
    prices: pl.DataFrame,
    decision_date: dt.date,
    config: AuroraConfig,
    *,
    symbols: Sequence[str] | None = None,
    members: Sequence[str] | None = None,
) -> ScoreResult:
    """Train on the history of `symbols` (default: every symbol in `features`) known before
    `decision_date` and score `members` (default: `symbols`; for a dated universe, the
    members on the decision date, while training keeps the names that left) on the feature
    date.

    A symbol to score with no feature row on the feature date, or with every feature null,
    is returned with a null score and its reason. Raises DataValidationError for a decision
    date that is not a session, a feature date absent from `features`, bad inputs, or too
    little labelled history.
    """
    cfg = config.predict
    feature_date = check_decision_date(decision_date)
    features = point_in_time(features, feature_date)
    prices = point_in_time(prices, feature_date)
    if features.height == 0 or features.filter(pl.col("date") == feature_date).height == 0:
        last = features["date"].max() if features.height else None
        raise DataValidationError(
            f"features.parquet has no rows for feature date {feature_date} (decision date "
            f"{decision_date}); the features end on {last}: run `aurora build` first"
        )
    wanted = list(symbols) if symbols is not None else sorted(features["symbol"].unique())
    features = features.filter(pl.col("symbol").is_in(wanted))
    prices = prices.filter(pl.col("symbol").is_in(wanted))
    panel = build_panel(features, prices, cfg.horizon)
    cutoff = panel.clock.index_of(feature_date)
    main, baseline = models_from_config(cfg, panel.features)
    (fit_main, fit_base), rows = fit_models(panel, cutoff, config, [main, baseline])

    today = panel.frame.filter(pl.col("date") == feature_date)
    raw = features.filter(pl.col("date") == feature_date)
    all_null = raw.filter(pl.all_horizontal(pl.col(n).is_null() | pl.col(n).is_nan()
                                            for n in panel.features))["symbol"].to_list()
    ranked = wanted if members is None else list(members)
    today = today.filter(pl.col("symbol").is_in(ranked))
    scored = today.filter(~pl.col("symbol").is_in(all_null))
    x = matrix(scored, panel.features)
    scored = scored.select("symbol").with_columns(
        score=pl.Series(fit_main.predict(x)), baseline_score=pl.Series(fit_base.predict(x))
    )
    scores = rank_scores(ranked, scored, set(all_null), feature_date)
    window = {
        "first_feature_date": rows["date"].min().isoformat(),
        "last_feature_date": rows["date"].max().isoformat(),
        "last_label_date": rows["label_end"].max().isoformat(),
        "sessions": int(rows["date"].n_unique()),
    }
    n_rows = rows.height
    return ScoreResult(
        decision_date=decision_date,
        feature_date=feature_date,
        horizon=cfg.horizon,
        scores=scores,
        model={"name": main.name, "parameters": main.parameters(), "training_window": window,
               "training_rows": n_rows, "features": list(panel.features)},
        baseline={"name": baseline.name, "parameters": baseline.parameters(),
                  "training_window": window, "training_rows": n_rows},
    )


def rank_scores(
    wanted: Sequence[str], scored: pl.DataFrame, all_null: set[str], feature_date: dt.date
) -> pl.DataFrame:
    """Rank `scored` (symbol, score, baseline_score) by score, best first, ties broken by
    symbol; add the unscored symbols of `wanted` with their reason. Ordered by rank, then
    the unscored ones by symbol."""
    ranked = scored.sort(pl.col("score"), pl.col("symbol"), descending=[True, False])
    n = ranked.height
    ranked = ranked.with_columns(rank=pl.int_range(1, n + 1, dtype=pl.Int64)).with_columns(
        percentile=(100.0 * (n - pl.col("rank")) / max(n - 1, 1)) if n > 1 else pl.lit(100.0),
        reason=pl.lit(None, dtype=pl.String),
    )
    have = set(ranked["symbol"].to_list())
    missing = [s for s in sorted(set(wanted)) if s not in have]
    reasons = [
        f"all features null on feature date {feature_date}" if s in all_null
        else f"no features on feature date {feature_date}"
        for s in missing
    ]
    rest = pl.DataFrame(
        {"symbol": missing, "reason": reasons},
        schema={"symbol": pl.String, "reason": pl.String},
    )
    return pl.concat([ranked, rest], how="diagonal_relaxed").select(
        "symbol", "score", "baseline_score", "rank", "percentile", "reason"
    )
