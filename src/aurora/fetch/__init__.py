"""The fetch stage: Alpaca daily bars into the validated, versioned price store.

Library API::

    from aurora.fetch import fetch_prices
    report = fetch_prices(config, universe=None, progress=None)   # -> FetchReport
    report.summary_lines()                                         # what to show a person

Modules: `client` (HTTP + pagination + parsing, retried by `aurora.retry`), `ratelimit`,
`batches` (normalise, batch, checkpoint), `incremental` (plan, restatements, merge),
`corporate_actions`, `publish` (store side), `summary`, `stage` (orchestration).
"""

from aurora.fetch.client import AlpacaBarsClient, RequestRejected, RetriesExhausted
from aurora.fetch.stage import fetch_prices
from aurora.fetch.summary import BatchFailure, FetchReport

__all__ = ["AlpacaBarsClient", "BatchFailure", "FetchReport", "RequestRejected",
           "RetriesExhausted", "fetch_prices"]
