"""The predict stage: point-in-time training, ranking and walk-forward evaluation.

Library API (the CLI is a thin layer over it):

- `predict(store, config, *, decision_date=None, universe=None, progress=None)
  -> PredictionResult`
- `evaluate(store, config, *, universe=None, progress=None) -> EvaluationReport`
- pure functions for notebooks: `train_and_score(features, prices, decision_date, config)`
  and `walk_forward(features, prices, config)`.
"""

from aurora.predict.api import PredictionResult, evaluate, predict
from aurora.predict.evaluate import EvaluationReport, walk_forward
from aurora.predict.train import ScoreResult, train_and_score
from aurora.store.documents import load_schema, validate_document

__all__ = [
    "EvaluationReport",
    "PredictionResult",
    "ScoreResult",
    "evaluate",
    "load_schema",
    "predict",
    "train_and_score",
    "validate_document",
    "walk_forward",
]
