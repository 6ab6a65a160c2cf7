"""A local, Alpaca-compatible market-data emulator: a test and demo bed.

Serves daily bars (`/v2/stocks/bars`, `/v2/stocks/{symbol}/bars`, the latest-bar routes),
`/v1/corporate-actions` and the trading API's `/v2/assets` (`Asset` rows) from a
`MarketData` on 127.0.0.1, with Alpaca's paging, validation, authentication, rate-limit
headers and gzip, plus scriptable faults (`FaultPlan`).
Production code must not import this package. See docs/emulator.md.
"""

from aurora_testbed.emulator.assets import Asset
from aurora_testbed.emulator.data import MarketData
from aurora_testbed.emulator.faults import FaultAction, FaultPlan, Revision
from aurora_testbed.emulator.server import EmulatorServer, LoggedRequest

__all__ = ["Asset", "EmulatorServer", "FaultAction", "FaultPlan", "LoggedRequest", "MarketData",
           "Revision"]
