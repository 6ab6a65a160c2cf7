"""Assemble, validate and serialise predictions.json.

The JSON Schema (draft 2020-12) ships as package data:
`aurora/predict/schema/predictions.schema.json`. `validate_document` checks a document
against it and against what a schema cannot say (unique symbols, ranks 1..n without gaps,
rank order matches score order). Nothing is written here: the store transaction of
`aurora.predict.api.predict` writes the validated document atomically.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
from functools import lru_cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from aurora.errors import DataValidationError
from aurora.predict.train import ScoreResult

SCHEMA_VERSION = 1
LABEL_TEXT = (
    "close-to-close return on adjusted prices from the close of decision_date to the close "
    "`horizon` sessions later"
)


@lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    """The predictions.json JSON Schema shipped with the package."""
    text = resources.files("aurora.predict").joinpath("schema/predictions.schema.json")
    return json.loads(text.read_text(encoding="utf-8"))


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


def validate_document(doc: dict[str, Any], source: str = "predictions.json") -> None:
    """Raise DataValidationError (one line naming the first problem) unless `doc` is a valid
    predictions document."""
    validator = Draft202012Validator(load_schema(), format_checker=FormatChecker())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.absolute_path) or "(document)"
        raise DataValidationError(
            f"{source}: {where}: {err.message[:200]} ({len(errors)} schema error(s))"
        )
    _check_consistency(doc, source)


def _check_consistency(doc: dict[str, Any], source: str) -> None:
    entries = doc["predictions"]
    symbols = [e["symbol"] for e in entries]
    if len(set(symbols)) != len(symbols):
        dup = next(s for s in symbols if symbols.count(s) > 1)
        raise DataValidationError(f"{source}: symbol {dup} is listed more than once")
    scored = sorted((e for e in entries if e["score"] is not None), key=lambda e: e["rank"])
    if [e["rank"] for e in scored] != list(range(1, len(scored) + 1)):
        raise DataValidationError(f"{source}: ranks are not 1..{len(scored)} without gaps")
    for better, worse in itertools.pairwise(scored):
        if better["score"] < worse["score"]:
            raise DataValidationError(
                f"{source}: {better['symbol']} (rank {better['rank']}) scores below "
                f"{worse['symbol']} (rank {worse['rank']})"
            )
    if any(not math.isfinite(e["score"]) for e in scored):
        raise DataValidationError(f"{source}: a score is not a finite number")
    if doc["decision_date"] <= doc["feature_date"]:
        raise DataValidationError(
            f"{source}: feature_date {doc['feature_date']} is not before decision_date "
            f"{doc['decision_date']} (lookahead)"
        )
