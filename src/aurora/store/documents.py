"""The contract of the store's JSON document predictions.json.

The JSON Schema (draft 2020-12) ships as package data:
`aurora/resources/predictions.schema.json`. `validate_document` checks a document against
it and against what a schema cannot say (unique symbols, ranks 1..n without gaps, rank
order matches score order, finite scores, feature date before the decision date).
"""

from __future__ import annotations

import itertools
import json
import math
from functools import lru_cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from aurora.errors import DataValidationError
from aurora.store.files import PREDICTIONS


@lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    """The predictions.json JSON Schema shipped with the package."""
    text = resources.files("aurora.resources").joinpath("predictions.schema.json")
    return json.loads(text.read_text(encoding="utf-8"))


def validate_document(doc: dict[str, Any], source: str = PREDICTIONS,
                      schema: dict[str, Any] | None = None) -> None:
    """Raise DataValidationError (one line naming the first problem) unless `doc` is a valid
    predictions document (of `schema`, default predictions.json's)."""
    validator = Draft202012Validator(schema or load_schema(), format_checker=FormatChecker())
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
