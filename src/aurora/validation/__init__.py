"""Price-data validation: the checks that decide whether anything downstream can be trusted.

Library API (the CLI `aurora validate` is a thin wrapper over `validate_store`)::

    from aurora.validation import validate_prices, validate_store
    report = validate_prices(prices, universe=symbols, corporate_actions=actions)
    report.ok, report.errors, report.to_dict(), report.summary_lines()

The names are imported on first use, so that a module of this package (`inactive`) can be
used without loading the checks and the store's JSON schemas.
"""

from importlib import import_module
from typing import Any

_HOMES = {
    "CHECKS": "aurora.validation.findings",
    "Finding": "aurora.validation.findings",
    "ValidationReport": "aurora.validation.findings",
    "validate_prices": "aurora.validation.prices",
    "validate_store": "aurora.validation.store_check",
}

__all__ = ["CHECKS", "Finding", "ValidationReport", "validate_prices", "validate_store"]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'aurora.validation' has no attribute {name!r}")
