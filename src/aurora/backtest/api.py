"""`backtest`: the walk-forward's out-of-sample scores traded after costs, over the store.

Reads the latest version's features and prices (`aurora.predict.api.load_inputs`: raw
bars adjusted point in time), runs the purged walk-forward (`aurora.predict.evaluate`: each
score from a model trained only on what was known before its date; with a runner, one
task per fold on the cluster), trades the configured model's scores
(`aurora.backtest.engine`) in the market of the stored bars (`costs.market_frame`, raw
closes for share counts), and publishes backtest.json in a new version over the one read.
Nothing here prints.
"""

from __future__ import annotations

from aurora.atomic import atomic_write_json
from aurora.backtest.costs import CostModel, market_frame
from aurora.backtest.engine import BacktestResult, Settings, run_backtest
from aurora.backtest.simulate import Market
from aurora.cluster import Runner
from aurora.config import AuroraConfig
from aurora.errors import DataValidationError
from aurora.predict.api import chosen_universe, load_inputs, member_rows
from aurora.predict.evaluate import walk_forward
from aurora.progress import Progress
from aurora.store import Store
from aurora.store.bars import read_prices
from aurora.store.files import BACKTEST
from aurora.universe import UniverseLike


def settings_from(config: AuroraConfig) -> Settings:
    """The engine's settings from `[backtest]` (holding: the prediction horizon unless
    set)."""
    b = config.backtest
    return Settings(
        construction=b.construction, weighting=b.weighting, top_k=b.top_k,
        quantiles=b.quantiles, holding=b.holding or config.predict.horizon, mode=b.mode,
        book_usd=b.book_usd,
        costs=CostModel(commission_per_share=b.commission_per_share,
                        min_commission=b.min_commission, half_spread_bps=b.half_spread_bps,
                        impact=b.impact, borrow_bps=b.borrow_bps))


def backtest(store: Store, config: AuroraConfig, *, universe: UniverseLike | None = None,
             progress: Progress | None = None, runner: Runner | None = None
             ) -> BacktestResult:
    """The backtest of the module docstring; returns it after publishing backtest.json.
    DataValidationError when the history is too short for the walk-forward or no session
    has enough tradable names; StoreError when the store lacks prices or features."""
    inputs = load_inputs(store)
    chosen = chosen_universe(store, config, universe, inputs.version)
    report = walk_forward(member_rows(inputs.features, chosen), inputs.prices, config,
                          symbols=list(chosen.symbols), progress=progress, runner=runner)
    model = {"main": report.summary.get("main_model"),
             "baseline": report.summary.get("baseline")}.get(config.backtest.model,
                                                            config.backtest.model)
    scores = report.oos.filter(report.oos["model"] == model).select("date", "symbol",
                                                                   "score")
    if scores.height == 0:
        raise DataValidationError(f"the walk-forward has no out-of-sample scores of model "
                                  f"{model!r}")
    raw = read_prices(store, inputs.version, symbols=chosen.symbols)
    frame = market_frame(
        inputs.prices.filter(inputs.prices["symbol"].is_in(list(chosen.symbols))), raw,
        estimator=config.backtest.spread_estimator)
    if chosen.membership is not None:
        frame = frame.with_columns(member=chosen.membership.is_member(frame))
    market = Market.from_frame(frame)
    settings = settings_from(config)
    result = run_backtest(scores, market, settings)
    body = {"model": model, "store_version": inputs.version,
            "prices_sha256": inputs.prices_sha256, "features_sha256": inputs.features_sha256,
            "walk_forward_rank_ic": report.summary.get("models", {}).get(model, {})
            .get("rank_ic", {}).get("mean"), **result.to_json()}
    body["settings"]["spread_estimator"] = (config.backtest.spread_estimator
                                            if config.backtest.half_spread_bps is None
                                            else "constant")
    with store.transaction("backtest", base=inputs.version, universe=chosen.record(),
                           params={"model": model, **body["settings"]}) as txn:
        atomic_write_json(txn.path(BACKTEST), body)
        net = result.summary["net"]
        txn.describe(BACKTEST, sharpe_net=net["sharpe"], annual_return_net=net["annual_return"],
                     sessions=net["sessions"])
    return result
