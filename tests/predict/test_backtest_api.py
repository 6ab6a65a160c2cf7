"""`aurora backtest` over a store: the walk-forward's scores traded after costs."""

from __future__ import annotations

import json

import pytest

from aurora.backtest.api import backtest
from aurora.config import BacktestConfig
from aurora.store import Store


@pytest.fixture(scope="module")
def market(helpers):
    prices = helpers.planted_prices(n_symbols=30, n_sessions=320, seed=5)
    config = helpers.small_config(train_sessions=100, min_train_sessions=60, test_sessions=60)
    return prices, helpers.simple_features(prices), config


def _store(tmp_path, helpers, prices, features) -> Store:
    store = Store(tmp_path / "data")
    helpers.publish(store, prices=prices, features=features)
    return store


@pytest.mark.parametrize("mode", ["overlapping", "periodic"])
def test_the_planted_reversal_earns_its_spread_and_pays_costs(tmp_path, helpers, market,
                                                               mode):
    prices, features, config = market
    store = _store(tmp_path, helpers, prices, features)
    before = store.current_version()
    config = config.model_copy(update={"backtest": BacktestConfig(
        construction="long_short", quantiles=5, mode=mode, book_usd=1e6)})
    result = backtest(store, config)
    s = result.summary
    assert s["settings"]["holding"] == config.predict.horizon
    assert s["gross"]["sharpe"] > 0.5 and s["gross"]["annual_return"] > 0  # the planted signal
    assert s["net"]["annual_return"] < s["gross"]["annual_return"]
    assert s["costs"]["usd"]["borrow"] > 0 and s["costs"]["usd"]["impact"] > 0
    assert s["capacity"]["book"] is None or s["capacity"]["book"] > 1e6
    manifest = store.manifest()
    assert manifest.stage == "backtest" and manifest.parent == before
    doc = json.loads(store.verified_path("backtest.json").read_text())
    assert doc["model"] == "lightgbm" and doc["store_version"] == before
    assert doc["net"] == s["net"] and len(doc["daily"]) == s["net"]["sessions"]
    assert set(doc["daily"][0]) >= {"date", "gross", "net", "benchmark", "equity",
                                    "drawdown", "commission", "spread", "impact", "borrow"}
    assert manifest.files["backtest.json"].meta("sharpe_net") == s["net"]["sharpe"]
    again = backtest(Store(tmp_path / "data"), config)  # deterministic
    assert again.summary == s


def test_cli_backtest_prints_a_table_and_writes_the_version(tmp_path, helpers, market,
                                                            capsys):
    from aurora.cli.main import main

    prices, features, config = market
    store = _store(tmp_path, helpers, prices, features)
    toml = tmp_path / "aurora.toml"
    toml.write_text("[predict]\n" + "".join(f"{k} = {v}\n" for k, v in
                                            config.predict.model_dump().items())
                    + "[backtest]\nconstruction = \"top_k\"\ntop_k = 5\n"
                    "half_spread_bps = 5\n")
    assert main(["backtest", "--data-dir", str(store.root), "--config", str(toml),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "backtest top_k (equal), held 5 sessions (overlapping)" in out
    assert all(name in out for name in ("gross", "net", "benchmark", "capacity"))
    assert f"wrote backtest.json in version {store.current_version()}" in out
    settings = json.loads(store.verified_path("backtest.json").read_text())["settings"]
    assert settings["costs"]["half_spread_bps"] == 5 and settings["top_k"] == 5
