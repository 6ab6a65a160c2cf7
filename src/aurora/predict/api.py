"""Store-level entry points: `predict` and `evaluate` (what the CLI and `aurora run` call).

Both read the features and the prices of one store version. `predict` cuts them
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
from typing import Any

import polars as pl

from aurora import calendar
from aurora.adjusted import load_adjusted_prices
from aurora.atomic import atomic_write_json, atomic_write_parquet
from aurora.cluster import Runner
from aurora.config import AuroraConfig
from aurora.errors import DataValidationError, StoreError
from aurora.predict.evaluate import EvaluationReport, report_lines, skill, walk_forward
from aurora.predict.predictions import build_document
from aurora.predict.train import ScoreResult, check_decision_date, point_in_time, train_and_score
from aurora.progress import Progress
from aurora.store import Store, Transaction
from aurora.store.datasets import dataset_digest, read_features
from aurora.store.documents import validate_document
from aurora.store.files import (
    EVALUATION,
    FEATURES,
    FEATURES_DATASET,
    PREDICTIONS,
    WALK_FORWARD,
)
from aurora.universe import Universe, UniverseLike, as_universe, resolve_universe

SHOWN_TOP = 10


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

    def summary_lines(self) -> list[str]:
        """What a person reads after `aurora predict` (no printing here)."""
        doc = self.document
        model, entries = doc["model"], doc["predictions"]
        window = model["training_window"]
        scored = [e for e in entries if e["score"] is not None]
        unranked = [e for e in entries if e["score"] is None]
        lines = [
            f"decision date {doc['decision_date']} (features of {doc['feature_date']}), "
            f"horizon {doc['horizon']} sessions, {model['name']} trained on "
            f"{model['training_rows']:,} rows {window['first_feature_date']} .. "
            f"{window['last_feature_date']}",
            f"ranked {len(scored)} of {len(entries)} symbols; top {min(SHOWN_TOP, len(scored))}"
            ": " + ", ".join(e["symbol"] for e in scored[:SHOWN_TOP]),
        ]
        lines += [f"not ranked: {e['symbol']}: {e['reason']}" for e in unranked[:SHOWN_TOP]]
        if len(unranked) > SHOWN_TOP:
            lines.append(f"... {len(unranked) - SHOWN_TOP} more not ranked (reasons in "
                         f"{PREDICTIONS})")
        lines += report_lines(self.evaluation)
        reused = " (evaluation reused)" if self.evaluation_reused else ""
        lines.append(f"wrote {PREDICTIONS} in version {self.version}{reused}")
        return lines


@dataclass(frozen=True)
class _Inputs:
    version: str
    features: pl.DataFrame
    prices: pl.DataFrame
    features_sha256: str
    prices_sha256: str
    synthetic: bool  # recorded by the fetch that wrote the prices, inherited with them


def load_inputs(store: Store) -> _Inputs:
    """The features and the prices of the latest version (raw bars adjusted point in time,
    `aurora.adjusted`: the labels' closes), with their sha256 (the features': of all their
    parts, `aurora.store.datasets.dataset_digest`)."""
    version = store.current_version()
    features = read_features(store, version)
    assert version is not None
    manifest = store.manifest(version)
    mismatch = manifest.features_from_other_prices()
    if mismatch is not None:
        raise DataValidationError(mismatch)
    prices = load_adjusted_prices(store, version)
    entry = manifest.prices_entry()
    digest = dataset_digest(manifest, FEATURES_DATASET, legacy=FEATURES)
    assert digest is not None
    assert entry is not None
    return _Inputs(version, features, prices.prices, digest, entry.sha256,
                   entry.meta("synthetic") is True)


def chosen_universe(store: Store, config: AuroraConfig, universe: UniverseLike | None,
                    version: str) -> Universe:
    """`universe` when given, else the one every stage resolves for `version`."""
    if universe is not None:
        return as_universe(universe)
    return resolve_universe(config, store, version)


def member_rows(features: pl.DataFrame, universe: Universe) -> pl.DataFrame:
    """The feature rows of members on their dates (all rows for an undated universe): the
    rows a dated universe trains, evaluates and ranks on, names that later left included."""
    return features if universe.membership is None else universe.membership.keep_members(
        features)


def default_decision_date(prices: pl.DataFrame) -> dt.date:
    """The next NYSE session after the last stored price date."""
    if prices.height == 0:
        raise DataValidationError("the prices: no rows")
    return calendar.next_session(prices["date"].max())


def _evaluation_key(inputs: _Inputs, config: AuroraConfig, through: dt.date,
                    universe: Universe) -> dict[str, Any]:
    symbols = list(universe.symbols)
    if universe.membership is not None:  # the same names with other dates differ too
        symbols += [f"{s},{a},{b or ''}" for s, a, b in universe.membership.rows()]
    return {
        "prices_sha256": inputs.prices_sha256,
        "features_sha256": inputs.features_sha256,
        "through": through.isoformat(),
        "predict_config": config.predict.model_dump(mode="json"),
        "symbols_sha256": hashlib.sha256("\n".join(symbols).encode()).hexdigest(),
    }


def _stored_evaluation(store: Store, key: dict[str, Any], version: str
                       ) -> dict[str, Any] | None:
    """The evaluation of `version` when it was made on the same inputs (`key`); None when
    there is none, it is for other inputs, or it does not match its manifest (then it is
    computed again, never trusted)."""
    try:
        path = store.verified_path(EVALUATION, version)
    except StoreError:
        return None
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
    universe: UniverseLike | None = None,
    progress: Progress | None = None,
    now: dt.datetime | None = None,
) -> PredictionResult:
    """Rank the universe for `decision_date` (default: the session after the last stored
    price) and publish predictions.json + evaluation.json in one store transaction.

    Only rows dated at or before the feature date are read, so the result for a given date
    does not depend on data stored after it. `universe` defaults to `resolve_universe` on
    the version read. Raises StoreError when an input is missing or another run published
    meanwhile, DataValidationError for bad inputs or too little history.
    """
    inputs = load_inputs(store)
    decision_date = decision_date or default_decision_date(inputs.prices)
    feature_date = check_decision_date(decision_date)
    chosen = chosen_universe(store, config, universe, inputs.version)
    symbols, source = list(chosen.symbols), chosen.source
    members = chosen.members_on(decision_date)
    if not members:
        raise DataValidationError(f"the universe {source} has no member on the decision date "
                                  f"{decision_date}")
    features = member_rows(inputs.features, chosen)
    result: ScoreResult = train_and_score(features, inputs.prices, decision_date,
                                          config, symbols=symbols, members=members)
    key = _evaluation_key(inputs, config, feature_date, chosen)
    summary = _stored_evaluation(store, key, inputs.version)
    reused = summary is not None
    report: EvaluationReport | dict[str, Any] | None = None
    if summary is None:
        report = _run_evaluation(point_in_time(features, feature_date),
                                 point_in_time(inputs.prices, feature_date), config, symbols,
                                 progress)
        summary = report.summary if isinstance(report, EvaluationReport) else report
    summary = {**summary, "skill": skill(summary)}  # also on evaluations stored before it
    doc = build_document(
        result, evaluation=summary, generated_at=now,
        inputs={"prices_sha256": inputs.prices_sha256,
                "features_sha256": inputs.features_sha256,
                "store_version": inputs.version, "universe": source, "symbols": len(members),
                **({"universe_symbols": len(symbols)} if chosen.dated else {}),
                "synthetic": inputs.synthetic},
    )
    validate_document(doc)
    scored = int(result.scores["score"].is_not_null().sum())
    with store.transaction("predict", base=inputs.version, universe=chosen.record(),
                           params={"decision_date": decision_date.isoformat(),
                                   "horizon": config.predict.horizon}) as txn:
        atomic_write_json(txn.path(PREDICTIONS), doc)
        txn.describe(PREDICTIONS, decision_date=decision_date.isoformat(),
                     feature_date=feature_date.isoformat(), symbols=len(members),
                     scored=scored)
        if report is not None:
            _write_evaluation(txn, report, key)
    version = store.current_version()
    assert version is not None
    return PredictionResult(doc, result.scores, summary, reused, version)


def _write_evaluation(txn: Transaction, report: EvaluationReport | dict[str, Any],
                      key: dict[str, Any]) -> None:
    """evaluation.json; with a report, also its out-of-sample scores (walk_forward.parquet:
    model, date, symbol, score, label, the evidence `aurora report` charts). Without one
    (too short a history) the scores of an older evaluation are removed, never left to
    disagree with it."""
    body = report.to_json() if isinstance(report, EvaluationReport) else dict(report)
    atomic_write_json(txn.path(EVALUATION), {"key": key, **body})
    txn.describe(EVALUATION, through=key["through"], status=body["status"])
    if isinstance(report, EvaluationReport):
        atomic_write_parquet(txn.path(WALK_FORWARD), report.oos.sort("model", "date", "symbol"))
        txn.describe(WALK_FORWARD, rows=report.oos.height, through=key["through"])
    else:
        txn.remove(WALK_FORWARD)


def evaluate(
    store: Store,
    config: AuroraConfig,
    *,
    universe: UniverseLike | None = None,
    progress: Progress | None = None,
    runner: Runner | None = None,
) -> EvaluationReport:
    """Walk-forward evaluation over the whole stored history; publishes evaluation.json
    (beside predictions.json). `runner`: where the folds are trained (`walk_forward`).
    Raises DataValidationError when the history is too short."""
    inputs = load_inputs(store)
    chosen = chosen_universe(store, config, universe, inputs.version)
    symbols = list(chosen.symbols)
    report = walk_forward(member_rows(inputs.features, chosen), inputs.prices, config,
                          symbols=symbols, progress=progress, runner=runner)
    through = max(inputs.features["date"].max(), inputs.prices["date"].max())
    key = _evaluation_key(inputs, config, through, chosen)
    with store.transaction("evaluate", base=inputs.version, universe=chosen.record(),
                           params={"horizon": config.predict.horizon}) as txn:
        _write_evaluation(txn, report, key)
    return report
