"""The fetch stage: Alpaca daily bars into the validated, versioned price store.

Library API::

    from aurora.fetch import fetch_prices
    report = fetch_prices(config, universe=None, progress=None)   # -> FetchReport
    report.summary_lines()                                         # what to show a person

Modules: `client` (HTTP + pagination + parsing, retried by `aurora.retry`, bounded by
`aurora.deadline`), `ratelimit`, `batches` (normalise, batch, checkpoint), `incremental`
(plan, restatements, merge), `reconcile` (the rotating re-check of old history), `source`
(what a store's prices are bound to), `corporate_actions`, `assets` (the trading API's
statuses: which symbols stopped trading), `publish` (store side), `summary`, `stage`
(orchestration).
"""

from aurora.deadline import DeadlineExceeded
from aurora.fetch.client import AlpacaBarsClient
from aurora.fetch.outcomes import RateLimitWaitExceeded, RequestRejected, RetriesExhausted
from aurora.fetch.pages import PagingError
from aurora.fetch.stage import fetch_prices
from aurora.fetch.summary import BatchFailure, FetchReport

__all__ = ["AlpacaBarsClient", "BatchFailure", "DeadlineExceeded", "FetchReport",
           "PagingError", "RateLimitWaitExceeded", "RequestRejected", "RetriesExhausted",
           "fetch_prices"]
