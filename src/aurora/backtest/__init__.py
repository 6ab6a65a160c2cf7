"""A cost-aware backtest of the walk-forward's out-of-sample scores (`aurora backtest`).

`engine.run_backtest` over `simulate.Market` arrays built by `costs.market_frame`; the
store-level entry point is `aurora.backtest.api.backtest`.
"""

from aurora.backtest.costs import CostModel, market_frame
from aurora.backtest.engine import BacktestResult, Settings, run_backtest
from aurora.backtest.simulate import Market, simulate

__all__ = ["BacktestResult", "CostModel", "Market", "Settings", "market_frame",
           "run_backtest", "simulate"]
