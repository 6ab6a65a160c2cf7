"""Store-level entry points: `predict` and `evaluate` (what the CLI and `aurora run` call).

Both read `features.parquet` and `prices.parquet` of one store version. `predict` cuts them
at the feature date (point in time), trains and scores, runs (or reuses) the walk-forward
evaluation over that same point-in-time history, validates predictions.json against its
schema and publishes predictions.json and evaluation.json in one store transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from aurora import calendar
from aurora.atomic import atomic_write_json, sha256_file
from aurora.config import AuroraConfig
from aurora.errors import DataValidationError, StoreError
from aurora.predict.evaluate import EvaluationReport, Progress, walk_forward
from aurora.predict.predictions import build_document, validate_document
from aurora.predict.train import ScoreResult, check_decision_date, point_in_time, train_and_score
from aurora.store import Store

FEATURES = "features.parquet"
PRICES = "prices.parquet"
PREDICTIONS = "predictions.json"
EVALUATION = "evaluation.json"


@dataclass(frozen=True)
class PredictionResult:
    """`document`: the validated predictions.json content; `scores`: the ScoreResult frame;
    `evaluation`: the evaluation summary embedded in the document; `evaluation_reused`: True
    when an evaluation.json computed on the same inputs was reused; `version`: the store
    version written."""

    document: dict[str, Any]
    scores: pl.DataFrame
    evaluation: dict[str, Any]
    evaluation_reused: bool
    version: str


@dataclass(frozen=True)
class _Inputs:
    version: str
    features: pl.DataFrame
    prices: pl.DataFrame
    features_sha256: str
    prices_sha256: str


def _read_parquet(path: Path) -> pl.DataFrame:
    try:
        return pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise DataValidationError(f"{path}: unreadable Parquet ({exc})") from None


def load_inputs(store: Store) -> _Inputs:
    """features.parquet and prices.parquet of the latest version, with their sha256."""
    features_path = store.require_latest(FEATURES, "run `aurora build` first")
    prices_path = store.require_latest(PRICES, "run `aurora fetch` first")
    version = store.current_version()
    assert version is not None  # require_latest succeeded
    return _Inputs(version, _read_parquet(features_path), _read_parquet(prices_path),
                   sha256_file(features_path), sha256_file(prices_path))


def _symbols(store: Store, config: AuroraConfig, universe: Sequence[str] | None) -> tuple[
        list[str], str]:
    if universe is not None:
        return list(universe), "argument"
    from aurora.fetch.publish import resolve_universe

    resolved = resolve_universe(config, store)
    return list(resolved.symbols), resolved.source


def default_decision_date(prices: pl.DataFrame) -> dt.date:
    """The next NYSE session after the last stored price date."""
    if prices.height == 0:
        raise DataValidationError(f"{PRICES}: no rows")
    return calendar.next_session(prices["date"].max())


def _evaluation_key(inputs: _Inputs, config: AuroraConfig, through: dt.date,
                    symbols: Sequence[str]) -> dict[str, Any]:
    return {
        "prices_sha256": inputs.prices_sha256,
        "features_sha256": inputs.features_sha256,
        "through": through.isoformat(),
        "predict_config": config.predict.model_dump(mode="json"),
        "symbols_sha256": hashlib.sha256("\n".join(symbols).encode()).hexdigest(),
    }


def _stored_evaluation(store: Store, key: dict[str, Any]) -> dict[str, Any] | None:
    path = store.latest_file(EVALUATION)
    if path is None:
        return None
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(stored, dict) or stored.get("key") != key:
        return None
    return {k: v for k, v in stored.items() if k not in ("key", "daily")}


def _run_evaluation(features: pl.DataFrame, prices: pl.DataFrame, config: AuroraConfig,
                    symbols: Sequence[str], progress: Progress | None
                    ) -> EvaluationReport | dict[str, Any]:
    try:
        return walk_forward(features, prices, config, symbols=symbols, progress=progress)
    except DataValidationError as exc:
        if "history too short" not in str(exc):
            raise
        return {"status": "insufficient_history", "message": str(exc)}


def predict(
    store: Store,
    config: AuroraConfig,
    *,
    decision_date: dt.date | None = None,
    universe: Sequence[str] | None = None,
    progress: Progress | None = None,
    now: dt.datetime | None = None,
) -> PredictionResult:
    """Rank the universe for `decision_date` (default: the session after the last stored
    price) and publish predictions.json + evaluation.json in one store transaction.

    Only rows dated at or before the feature date are read, so the result for a given date
    does not depend on data stored after it. Raises StoreError when an input is missing,
    DataValidationError for bad inputs or too little history.
    """
    inputs = load_inputs(store)
    decision_date = decision_date or default_decision_date(inputs.prices)
    feature_date = check_decision_date(decision_date)
    symbols, source = _symbols(store, config, universe)
    result: ScoreResult = train_and_score(inputs.features, inputs.prices, decision_date,
                                          config, symbols=symbols)
    key = _evaluation_key(inputs, config, feature_date, symbols)
    summary = _stored_evaluation(store, key)
    reused = summary is not None
    report: EvaluationReport | dict[str, Any] | None = None
    if summary is None:
        report = _run_evaluation(point_in_time(inputs.features, feature_date),
                                 point_in_time(inputs.prices, feature_date), config, symbols,
                                 progress)
        summary = report.summary if isinstance(report, EvaluationReport) else report
    doc = build_document(
        result, evaluation=summary, generated_at=now,
        inputs={"prices_sha256": inputs.prices_sha256,
                "features_sha256": inputs.features_sha256,
                "store_version": inputs.version, "universe": source, "symbols": len(symbols)},
    )
    validate_document(doc)
    scored = int(result.scores["score"].is_not_null().sum())
    with store.transaction("predict", params={"decision_date": decision_date.isoformat(),
                                              "horizon": config.predict.horizon}) as txn:
        if txn.parent != inputs.version:
            raise StoreError(f"{store.root}: the store changed while predicting; run again")
        atomic_write_json(txn.path(PREDICTIONS), doc)
        txn.describe(PREDICTIONS, decision_date=decision_date.isoformat(),
                     feature_date=feature_date.isoformat(), symbols=len(symbols),
                     scored=scored)
        if report is not None:
            _write_evaluation(txn, report, key)
    version = store.current_version()
    assert version is not None
    return PredictionResult(doc, result.scores, summary, reused, version)


def _write_evaluation(txn: Any, report: EvaluationReport | dict[str, Any],
                      key: dict[str, Any]) -> None:
    body = report.to_json() if isinstance(report, EvaluationReport) else dict(report)
    atomic_write_json(txn.path(EVALUATION), {"key": key, **body})
    txn.describe(EVALUATION, through=key["through"], status=body["status"])


def evaluate(
    store: Store,
    config: AuroraConfig,
    *,
    universe: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> EvaluationReport:
    """Walk-forward evaluation over the whole stored history; publishes evaluation.json
    (beside predictions.json). Raises DataValidationError when the history is too short."""
    inputs = load_inputs(store)
    symbols, _ = _symbols(store, config, universe)
    report = walk_forward(inputs.features, inputs.prices, config, symbols=symbols,
                          progress=progress)
    through = max(inputs.features["date"].max(), inputs.prices["date"].max())
    key = _evaluation_key(inputs, config, through, symbols)
    with store.transaction("evaluate", params={"horizon": config.predict.horizon}) as txn:
        if txn.parent != inputs.version:
            raise StoreError(f"{store.root}: the store changed while evaluating; run again")
        _write_evaluation(txn, report, key)
    return report
