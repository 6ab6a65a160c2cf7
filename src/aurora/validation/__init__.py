"""Price-data validation: the checks that decide whether anything downstream can be trusted.

Library API (the CLI `aurora validate` is a thin wrapper over `validate_store`)::

    from aurora.validation import validate_prices, validate_store
    report = validate_prices(prices, universe=symbols, corporate_actions=actions)
    report.ok, report.errors, report.to_dict(), report.summary_lines()
"""

from aurora.validation.findings import CHECKS, Finding, ValidationReport
from aurora.validation.prices import validate_prices
from aurora.validation.store_check import validate_store

__all__ = ["CHECKS", "Finding", "ValidationReport", "validate_prices", "validate_store"]
