"""predict_preclose and evaluate_preclose on a real store: raw bars imported, the registry's
features built, the model evaluated, minute bars stored."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from aurora.calendar import sessions
from aurora.config import AuroraConfig, PredictConfig, ValidationConfig
from aurora.features import build_features
from aurora.importbars import import_bars
from aurora.intraday.store import intraday_store, stored_days, write_days
from aurora.predict import predict
from aurora.predict.preclose_api import (
    evaluate_preclose,
    preclose_schema,
    predict_preclose,
    summary_lines,
)
from aurora.store import Store
from aurora.store.files import PREDICTIONS_PRECLOSE
from aurora_testbed.synthetic import generate_market
from aurora_testbed.synthetic.minutes import minute_bars

SYMBOLS = [f"S{i:02d}" for i in range(24)]
START, END = dt.date(2021, 1, 4), dt.date(2022, 12, 30)
TODAY = dt.date(2022, 12, 30)
NOW = dt.datetime(2022, 12, 30, 20, 50, tzinfo=dt.UTC)


def config(root) -> AuroraConfig:
    return AuroraConfig(
        data_dir=root, validation=ValidationConfig(severities={"large_move": "warning"}),
        predict=PredictConfig(train_sessions=120, min_train_sessions=80, test_sessions=20,
                              n_estimators=40, min_data_in_leaf=40, num_leaves=7,
                              embargo_sessions=2, horizon=5, factor_weight=0.0))


def minutes_of(market, days) -> pl.DataFrame:
    daily = market.bars.filter(pl.col("date").is_in(days))
    return minute_bars(daily, 0, extended=True).with_columns(
        date=pl.col("timestamp").dt.convert_time_zone("America/New_York").dt.date())


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("preclose") / "data"
    market = generate_market(SYMBOLS, START, END, seed=3)
    bars = root.parent / "bars.parquet"
    history = market.bars.filter(pl.col("date") < TODAY)  # today is not over yet
    history.write_parquet(bars)
    cfg = config(root)
    store = Store(root)
    import_bars(store, bars, config=cfg, today=TODAY)
    build_features(store, cfg, lookahead=False)
    predict(store, cfg)
    return store, cfg, market


def published(store: Store) -> dict:
    """The published file, but for the store version it was read from (each call
    publishes one)."""
    doc = json.loads((store.latest / PREDICTIONS_PRECLOSE).read_text())
    doc["inputs"].pop("store_version")
    return doc


def test_the_pre_close_file_ignores_every_minute_after_the_cut(built):
    store, cfg, market = built
    minutes = minutes_of(market, [TODAY])
    first = predict_preclose(store, cfg, minutes, TODAY, now=NOW)
    doc = published(store)
    assert doc["decision_date"] == "2022-12-30" and doc["as_of"] == "2022-12-30T20:45:00Z"
    assert doc["feature_date"] == "2022-12-29"
    assert sum(e["score"] is not None for e in doc["predictions"]) == len(SYMBOLS)
    cut = dt.datetime(2022, 12, 30, 20, 45, tzinfo=dt.UTC)
    later = minutes.with_columns(
        pl.when(pl.col("timestamp") >= cut).then(pl.col(c) * 1.7).otherwise(pl.col(c))
        .alias(c) for c in ("open", "high", "low", "close", "volume", "vwap"))
    predict_preclose(store, cfg, later, TODAY, now=NOW)
    assert published(store) == doc
    earlier = minutes.with_columns(
        pl.when(pl.col("timestamp") < cut).then(pl.col("close") * 1.05)
        .otherwise(pl.col("close")).alias("close"))
    earlier = earlier.with_columns(pl.max_horizontal("high", "close").alias("high"))
    predict_preclose(store, cfg, earlier, TODAY, now=NOW)
    assert published(store)["predictions"] != doc["predictions"]  # it does read them
    assert "as_of" in preclose_schema()["required"]
    assert first.summary_lines()[0].startswith("pre-close ranking for the close of 2022-12-30")


def test_the_walk_forward_reports_pre_close_beside_close_to_close(built):
    store, cfg, market = built
    days = sessions(dt.date(2022, 9, 1), dt.date(2022, 11, 30))
    istore = intraday_store(store.root, "1Min")
    with istore.transaction("test", base=istore.current_version()) as txn:
        write_days(txn, minutes_of(market, days).select(
            "timestamp", "date", "symbol", "open", "high", "low", "close", "volume", "vwap",
            "trade_count"))
    summary = evaluate_preclose(store, cfg)
    assert summary["status"] == "ok" and summary["dates"] >= 40
    for variant in ("preclose", "close_to_close"):
        rank_ic = summary[variant]["rank_ic"]
        assert rank_ic["n"] == summary["dates"] and -1 < rank_ic["mean"] < 1
    assert summary["preclose"]["rank_ic"]["mean"] != summary["close_to_close"]["rank_ic"]["mean"]
    lines = summary_lines(summary)
    assert "rank IC, pre-close" in lines[1] and "rank IC, close-to-close" in lines[2]
    assert json.loads((store.latest / "evaluation_preclose.json").read_text()) == summary


def test_aurora_stream_publishes_the_pre_close_ranking_at_the_cut(built):
    from aurora.config import AlpacaConfig, StreamConfig
    from aurora.stream.day import run_stream_day
    from aurora_testbed.emulator import EmulatorServer, MarketData
    from aurora_testbed.emulator.stream import StreamServer, messages_with_updates

    store, cfg, market = built
    key, secret = "PKPRECLOSE", "pre-close-secret"
    minutes = minutes_of(market, [TODAY]).filter(
        pl.col("timestamp") <= dt.datetime(2022, 12, 30, 21, 10, tzinfo=dt.UTC))
    data = MarketData(market.bars, market.corporate_actions)
    with EmulatorServer(data, {key: secret},
                        clock=lambda: dt.datetime(2023, 1, 3, 15, tzinfo=dt.UTC)) as rest, \
            StreamServer(messages_with_updates(minutes.drop("date"), every=9),
                         {key: secret}) as srv:
        live = cfg.model_copy(update={
            "alpaca": AlpacaConfig(key_id=key, secret_key=secret, data_url=rest.url,
                                   base_url=rest.url),
            "stream": StreamConfig(url=srv.url("{feed}"))})
        report = run_stream_day(live, universe=SYMBOLS, day=TODAY)
    assert report.preclose.startswith("2022-12-30T20:45:00Z, version")
    streamed = published(store)
    direct = predict_preclose(store, cfg, minutes, TODAY, now=NOW)
    assert [(e["symbol"], e["rank"]) for e in streamed["predictions"]] == [
        (e["symbol"], e["rank"]) for e in direct.document["predictions"]]


def test_cli_evaluate_preclose_prints_both_rank_ics(built, capsys, tmp_path):
    from aurora.cli.main import main

    store = built[0]
    minutes_store = intraday_store(store.root, "1Min")  # the stream test may have written
    if minutes_store.current_version() is None or dt.date(2022, 9, 1) not in stored_days(
            minutes_store.manifest()):  # only today: the walk-forward needs its days
        test_the_walk_forward_reports_pre_close_beside_close_to_close(built)
    toml = tmp_path / "aurora.toml"
    toml.write_text("[validation.severities]\nlarge_move = \"warning\"\n[predict]\n"
                    "train_sessions = 120\nmin_train_sessions = 80\ntest_sessions = 20\n"
                    "n_estimators = 40\nmin_data_in_leaf = 40\nnum_leaves = 7\n"
                    "embargo_sessions = 2\nhorizon = 5\nfactor_weight = 0.0\n")
    capsys.readouterr()
    assert main(["evaluate", "--preclose", "--data-dir", str(store.root), "--config",
                 str(toml), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "rank IC, pre-close" in out and "rank IC, close-to-close" in out
    assert "wrote evaluation_preclose.json" in out


def test_a_failing_ranking_is_an_alert_and_the_day_is_still_published(built, monkeypatch):
    from aurora.config import AlpacaConfig, StreamConfig
    from aurora.intraday import read_intraday
    from aurora.predict import preclose_api
    from aurora.stream.day import run_stream_day
    from aurora_testbed.emulator import EmulatorServer, MarketData
    from aurora_testbed.emulator.stream import StreamServer, bar_messages

    store, cfg, market = built

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the ranking\nsecond line")

    monkeypatch.setattr(preclose_api, "predict_preclose", broken)
    key, secret = "PKPRECLOSE2", "pre-close-secret-2"
    minutes = minutes_of(market, [TODAY]).filter(
        pl.col("timestamp") <= dt.datetime(2022, 12, 30, 21, 10, tzinfo=dt.UTC))
    alerts: list[tuple[str, str]] = []
    with EmulatorServer(MarketData(market.bars, market.corporate_actions), {key: secret},
                        clock=lambda: dt.datetime(2023, 1, 3, 15, tzinfo=dt.UTC)) as rest, \
            StreamServer(bar_messages(minutes.drop("date")), {key: secret}) as srv:
        live = cfg.model_copy(update={
            "alpaca": AlpacaConfig(key_id=key, secret_key=secret, data_url=rest.url,
                                   base_url=rest.url),
            "stream": StreamConfig(url=srv.url("{feed}"))})
        report = run_stream_day(live, universe=SYMBOLS, day=TODAY,
                                on_alert=lambda rule, message: alerts.append((rule, message)))
    assert report.preclose == "failed: a bug in the ranking"
    assert alerts == [("preclose_failed", "the pre-close prediction of 2022-12-30 failed: "
                                          "a bug in the ranking")]
    stored = read_intraday(store.root, "1Min", start=TODAY, end=TODAY)
    assert stored.height == report.bars and stored["timestamp"].max() >= dt.datetime(
        2022, 12, 30, 21, 5, tzinfo=dt.UTC)


def test_with_the_intraday_family_both_variants_are_ranked_and_evaluated(tmp_path):
    """build.intraday: the store's features carry the family, the pre-close row computes it
    from today's minutes to the cut, and minutes after the cut change nothing."""
    from aurora.config import BuildConfig

    root = tmp_path / "data"
    market = generate_market(SYMBOLS[:12], dt.date(2021, 6, 1), END, seed=4)
    bars = tmp_path / "bars.parquet"
    market.bars.filter(pl.col("date") < TODAY).write_parquet(bars)
    cfg = config(root).model_copy(update={"build": BuildConfig(intraday=True)})
    store = Store(root)
    import_bars(store, bars, config=cfg, today=TODAY)
    days = sessions(dt.date(2022, 10, 3), dt.date(2022, 12, 29))
    istore = intraday_store(root, "1Min")
    with istore.transaction("test", base=istore.current_version()) as txn:
        write_days(txn, minutes_of(market, days).select(
            "timestamp", "date", "symbol", "open", "high", "low", "close", "volume", "vwap",
            "trade_count"))
    result = build_features(store, cfg, lookahead=True)
    assert result.meta["feature_types"]["intraday"] == 5
    predict(store, cfg)
    minutes = minutes_of(market, [TODAY])
    doc = predict_preclose(store, cfg, minutes, TODAY, now=NOW).document
    assert sum(e["score"] is not None for e in doc["predictions"]) == 12
    cut = dt.datetime(2022, 12, 30, 20, 45, tzinfo=dt.UTC)
    later = minutes.with_columns(
        pl.when(pl.col("timestamp") >= cut).then(pl.col(c) * 1.7).otherwise(pl.col(c))
        .alias(c) for c in ("open", "high", "low", "close", "volume", "vwap"))
    predict_preclose(store, cfg, later, TODAY, now=NOW)
    assert published(store)["predictions"] == doc["predictions"]
    summary = evaluate_preclose(store, cfg)
    assert summary["status"] == "ok" and summary["dates"] >= 20
    # built with the family, ranked by a configuration that does not say so: the stored
    # features decide, and the file is the same
    plain = cfg.model_copy(update={"build": BuildConfig()})
    assert predict_preclose(store, plain, minutes, TODAY, now=NOW).document[
        "predictions"] == doc["predictions"]


def test_symbols_halted_at_the_cut_are_named_and_stay_ranked(built):
    store, cfg, market = built
    minutes = minutes_of(market, [TODAY])
    result = predict_preclose(store, cfg, minutes, TODAY, now=NOW, halted={"S03", "ZZZZ"})
    doc = published(store)
    assert doc["halted_at_cut"] == ["S03"]  # of the universe only
    [s03] = [e for e in doc["predictions"] if e["symbol"] == "S03"]
    assert s03["score"] is not None and s03["rank"] is not None
    assert "halted at the cut (still ranked, on their minutes before the halt): S03" in \
        result.summary_lines()
    assert "halted_at_cut" in preclose_schema()["properties"]
    predict_preclose(store, cfg, minutes, TODAY, now=NOW)
    assert "halted_at_cut" not in published(store)  # statuses not known: left out


def test_aurora_stream_names_a_symbol_halted_at_the_cut(built):
    from aurora.config import AlpacaConfig, StreamConfig
    from aurora.stream.day import run_stream_day
    from aurora_testbed.emulator import EmulatorServer, MarketData
    from aurora_testbed.emulator.stream import StreamFaults, StreamServer, bar_messages
    from aurora_testbed.emulator.stream_market import TradingHalt

    store, cfg, market = built
    # another test's journal of the day would be replayed (the cut reached before any
    # status), and this one's would hand the others its halt
    journal = store.state_dir / "stream" / f"{TODAY}.jsonl"
    journal.unlink(missing_ok=True)
    key, secret = "PKPRECLOSE3", "pre-close-secret-3"
    minutes = minutes_of(market, [TODAY]).filter(
        pl.col("timestamp") <= dt.datetime(2022, 12, 30, 21, 10, tzinfo=dt.UTC))
    halt = TradingHalt("S05", dt.datetime(2022, 12, 30, 20, 31, tzinfo=dt.UTC),  # 15:31
                       dt.datetime(2022, 12, 30, 20, 52, tzinfo=dt.UTC))  # to 15:52 New York
    with EmulatorServer(MarketData(market.bars, market.corporate_actions), {key: secret},
                        clock=lambda: dt.datetime(2023, 1, 3, 15, tzinfo=dt.UTC)) as rest, \
            StreamServer(bar_messages(minutes.drop("date")), {key: secret},
                         faults=StreamFaults(halts=(halt,))) as srv:
        live = cfg.model_copy(update={
            "alpaca": AlpacaConfig(key_id=key, secret_key=secret, data_url=rest.url,
                                   base_url=rest.url),
            "stream": StreamConfig(url=srv.url("{feed}"))})
        try:
            report = run_stream_day(live, universe=SYMBOLS, day=TODAY)
        finally:
            journal.unlink(missing_ok=True)
    doc = published(store)
    assert report.halted_at_cut == ["S05"] and doc["halted_at_cut"] == ["S05"]
    assert doc["as_of"] == "2022-12-30T20:45:00Z"
    assert {e["symbol"] for e in doc["predictions"] if e["score"] is not None} == set(SYMBOLS)
    assert report.preclose.endswith("; halted at the cut (still ranked): S05")
    assert "halted: S05 15:31-15:52 (code H, reason T12: Trading Halted; For information " \
           "requested by NASDAQ)" in report.summary_lines()


def test_the_pre_close_feature_set_must_match_the_stored_features(built, tmp_path):
    """The model is trained on the stored features: a configured set that differs (the
    family asked for but not built, user features added since) is one line naming both."""
    from aurora.config import BuildConfig
    from aurora.errors import ConfigError
    from aurora.features.builder import FeatureSet
    from aurora.predict import preclose_api

    store, cfg, _ = built
    assert preclose_api._stored_feature_set(store, cfg) == FeatureSet()
    asked = cfg.model_copy(update={"build": BuildConfig(intraday=True)})
    with pytest.raises(ConfigError, match="stored only none; configured only "
                       + ", ".join(preclose_api.INTRADAY_NAMES)):
        preclose_api._stored_feature_set(store, asked)
    mine = tmp_path / "mine.toml"
    mine.write_text('[features]\nf_mine = "Mean(close, 5)"\n')
    with_user = cfg.model_copy(update={"build": BuildConfig(features=mine)})
    with pytest.raises(ConfigError, match="stored only none; configured only f_mine"):
        preclose_api._stored_feature_set(store, with_user)
