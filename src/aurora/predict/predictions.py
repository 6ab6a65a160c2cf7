"""Assemble predictions.json from a scoring result.

Its contract (`aurora.store.documents.validate_document`) is checked before the store
transaction of `aurora.predict.api.predict` writes the document atomically.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aurora.predict.train import ScoreResult

SCHEMA_VERSION = 1
LABEL_TEXT = (
    "close-to-close return on adjusted prices from the close of decision_date to the close "
    "`horizon` sessions later"
)


def prediction_entries(result: ScoreResult) -> list[dict[str, Any]]:
    """One entry per requested symbol: scored ones by rank, then unscored ones with reason."""
    entries = []
    for row in result.scores.iter_rows(named=True):
        if row["score"] is None:
            entries.append({"symbol": row["symbol"], "score": None, "rank": None,
                            "percentile": None, "reason": row["reason"]})
        else:
            entries.append({"symbol": row["symbol"], "score": float(row["score"]),
                            "rank": int(row["rank"]), "percentile": float(row["percentile"])})
    return entries


def build_document(
    result: ScoreResult,
    *,
    evaluation: dict[str, Any],
    inputs: dict[str, Any],
    generated_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """The predictions.json document (not yet validated)."""
    generated_at = generated_at or dt.datetime.now(dt.UTC)
    return {
        "schema_version": SCHEMA_VERSION,
        "decision_date": result.decision_date.isoformat(),
        "feature_date": result.feature_date.isoformat(),
        "horizon": result.horizon,
        "label": LABEL_TEXT,
        "generated_at": generated_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "model": result.model,
        "baseline": result.baseline,
        "inputs": inputs,
        "evaluation": evaluation,
        "predictions": prediction_entries(result),
    }
