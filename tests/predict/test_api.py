"""Store-level predict/evaluate, predictions.json schema, and the CLI."""

from __future__ import annotations

import copy
import json

import polars as pl
import pytest

from aurora import calendar
from aurora.atomic import atomic_write_parquet
from aurora.errors import DataValidationError
from aurora.predict import evaluate, load_schema, predict, train_and_score, validate_document
from aurora.store import Store
from aurora.validation import validate_store


@pytest.fixture(scope="module")
def market(helpers):
    prices = helpers.planted_prices(n_symbols=25, n_sessions=300, seed=21)
    config = helpers.small_config(train_sessions=100, min_train_sessions=60, test_sessions=60)
    return prices, helpers.simple_features(prices), config


def _store(tmp_path, helpers, prices, features, name="data"):
    store = Store(tmp_path / name)
    helpers.publish(store, prices=prices, features=features)
    return store


def _symbols(prices):
    return sorted(prices["symbol"].unique().to_list())


@pytest.fixture(scope="module")
def predicted(tmp_path_factory, helpers, market):
    prices, features, config = market
    store = Store(tmp_path_factory.mktemp("p") / "data")
    helpers.publish(store, prices=prices, features=features)
    result = predict(store, config, universe=[*_symbols(prices), "NOPE"])
    return store, result


def test_predict_publishes_valid_predictions_and_evaluation(predicted, market):
    prices, _, _ = market
    store, result = predicted
    doc = json.loads(store.verified_path("predictions.json").read_text())
    assert doc == json.loads(json.dumps(result.document))
    validate_document(doc)
    last = prices["date"].max()
    assert doc["feature_date"] == last.isoformat()
    assert doc["decision_date"] == calendar.next_session(last).isoformat()
    assert doc["horizon"] == 5 and doc["model"]["name"] == "lightgbm"
    assert len(doc["predictions"]) == 26
    nope = [e for e in doc["predictions"] if e["symbol"] == "NOPE"]
    assert nope == [{"symbol": "NOPE", "score": None, "rank": None, "percentile": None,
                     "reason": f"no features on feature date {last}"}]
    manifest = store.manifest()
    assert manifest.stage == "predict"
    assert {"predictions.json", "evaluation.json"} <= set(manifest.files)
    assert doc["inputs"]["prices_sha256"] == manifest.prices_entry().sha256
    evaluation = json.loads(store.verified_path("evaluation.json").read_text())
    assert evaluation["status"] == "ok" and evaluation["daily"]
    assert doc["evaluation"]["models"] == evaluation["models"]
    assert not result.evaluation_reused


def test_evaluation_is_reused_for_the_same_inputs(predicted, market):
    prices, _, config = market
    store, first = predicted
    again = predict(store, config, universe=[*_symbols(prices), "NOPE"])
    assert again.evaluation_reused
    assert again.document["predictions"] == first.document["predictions"]
    assert again.document["evaluation"] == first.document["evaluation"]


def test_truncated_store_gives_identical_predictions(tmp_path, helpers, market):
    prices, features, config = market
    days = sorted(prices["date"].unique().to_list())
    decision = days[-25]
    full = _store(tmp_path, helpers, prices, features, "full")
    cut = _store(tmp_path, helpers, prices.filter(pl.col("date") < decision),
                 features.filter(pl.col("date") < decision), "cut")
    a = predict(full, config, decision_date=decision, universe=_symbols(prices))
    b = predict(cut, config, universe=_symbols(prices))  # default date = the session after
    assert b.document["decision_date"] == decision.isoformat()
    for key in ("decision_date", "feature_date", "horizon", "model", "baseline", "evaluation",
                "predictions"):
        assert a.document[key] == b.document[key], key
    assert a.document["inputs"]["prices_sha256"] != b.document["inputs"]["prices_sha256"]


def test_store_evaluate_writes_evaluation_json(tmp_path, helpers, market):
    prices, features, config = market
    store = _store(tmp_path, helpers, prices, features)
    report = evaluate(store, config, universe=_symbols(prices))
    stored = json.loads(store.verified_path("evaluation.json").read_text())
    assert store.manifest().stage == "evaluate"
    assert stored["models"] == json.loads(json.dumps(report.summary["models"]))
    assert len(stored["daily"]) == report.daily.height
    assert {"lightgbm", "ridge"} == set(stored["models"])
    # predict for the default date reuses this evaluation (same inputs, same cut-off)
    assert predict(store, config, universe=_symbols(prices)).evaluation_reused


def _broken(doc, mutate):
    bad = copy.deepcopy(doc)
    mutate(bad)
    return bad


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("decision_date"), "'decision_date' is a required property"),
        (lambda d: d.update(decision_date="2024/01/02"), "decision_date"),
        (lambda d: d.update(horizon=0), "horizon"),
        (lambda d: d["predictions"][0].update(score="high"), "predictions/0"),
        (lambda d: d["predictions"][-1].pop("reason"), "predictions/25"),
        (lambda d: d["inputs"].update(prices_sha256="abc"), "inputs/prices_sha256"),
        (lambda d: d.update(extra=1), "Additional properties"),
        (lambda d: d["predictions"][1].update(rank=1), "ranks are not 1..25"),
        (lambda d: d["predictions"][1].update(symbol=d["predictions"][0]["symbol"]),
         "listed more than once"),
        (lambda d: d["predictions"][0].update(score=-99.0), "scores below"),
        (lambda d: d.update(feature_date=d["decision_date"]), "lookahead"),
    ],
)
def test_schema_rejects_broken_documents(predicted, mutate, message):
    _, result = predicted
    validate_document(result.document)
    with pytest.raises(DataValidationError, match=message):
        validate_document(_broken(result.document, mutate))


def test_schema_is_draft_2020_12_package_data():
    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "predictions" in schema["required"]


def test_cli_missing_inputs_exit_codes(tmp_path, helpers, market, capsys):
    from aurora.cli.main import main

    _prices, features, _ = market
    data = tmp_path / "data"
    assert main(["predict", "--data-dir", str(data)]) == 7
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "the store is empty (run `aurora fetch` first)" in err
    assert err.count("\n") == 1
    helpers.publish(Store(data), features=features)
    assert main(["evaluate", "--data-dir", str(data)]) == 7
    assert "holds no prices: run `aurora fetch` first" in capsys.readouterr().err
    assert main(["predict", "--data-dir", str(data), "--decision-date", "soon"]) == 2
    assert "--decision-date 'soon': expected a date as YYYY-MM-DD" in capsys.readouterr().err


def test_cli_predict_and_evaluate(tmp_path, helpers, market, capsys):
    from aurora.cli.main import main

    prices, features, config = market
    data = tmp_path / "data"
    helpers.publish(Store(data), prices=prices, features=features)
    (data / "universe").mkdir()
    (data / "universe" / "top300.txt").write_text("\n".join(_symbols(prices)) + "\n")
    toml = tmp_path / "aurora.toml"
    toml.write_text("[predict]\n" + "".join(f"{k} = {v}\n" for k, v in
                                            config.predict.model_dump().items()))
    assert main(["evaluate", "--data-dir", str(data), "--config", str(toml)]) == 0
    out = capsys.readouterr().out
    assert "lightgbm" in out and "ridge" in out and "rank IC" in out
    assert main(["predict", "--data-dir", str(data), "--config", str(toml)]) == 0
    out = capsys.readouterr().out
    assert "ranked 25 of 25 symbols" in out and "evaluation reused" in out
    assert main(["predict", "--data-dir", str(data), "--config", str(toml),
                 "--decision-date", "2020-01-04"]) == 5
    assert "2020-01-04 is not an NYSE session" in capsys.readouterr().err


def test_features_built_from_other_prices_are_refused(tmp_path, helpers, market):
    """A version pairing features with prices they were not built from (a fetch published
    over the build's input, a hand edit) is refused by predict and by validate."""
    prices, features, config = market
    store = Store(tmp_path / "data")
    helpers.publish(store, prices=prices)
    old_prices = store.manifest().prices_entry().sha256
    with store.transaction("build", base=store.current_version()) as txn:
        atomic_write_parquet(txn.path("features.parquet"), features)
        txn.describe("features.parquet", prices_sha256=old_prices)
    predict(store, config)  # consistent: fine
    with store.transaction("fetch", base=store.current_version()) as txn:  # new prices only
        atomic_write_parquet(txn.path("prices.parquet"),
                             prices.with_columns(pl.col("close") * 1.01))
    with pytest.raises(DataValidationError,
                       match=r"the features of version .* were built from other prices "
                             r".*run `aurora build`"):
        predict(store, config)
    report = validate_store(store, config)
    assert [f.check for f in report.errors] == ["stale_features"]


def test_a_dated_universe_trains_on_names_that_left_and_ranks_only_members(tmp_path, helpers,
                                                                            market):
    """S000 leaves the universe 60 sessions before the end, S001 is a member only from 20
    sessions before the end: the ranking lists the members of the decision date; training
    and the evaluation keep S000's member rows and drop every non-member row."""
    prices, features, config = market
    store = _store(tmp_path, helpers, prices, features)
    days = sorted(prices["date"].unique().to_list())
    left, joined = days[-60], days[-20]
    symbols = _symbols(prices)
    frame = pl.DataFrame({
        "symbol": symbols,
        "start": [days[0] if s != "S001" else joined for s in symbols],
        "end": [left if s == "S000" else None for s in symbols],
    })
    result = predict(store, config, universe=frame)
    listed = [e["symbol"] for e in result.document["predictions"]]
    assert "S000" not in listed and "S001" in listed and len(listed) == len(symbols) - 1
    assert result.document["inputs"]["symbols"] == len(symbols) - 1
    assert result.document["inputs"]["universe_symbols"] == len(symbols)
    validate_document(result.document)
    plain = predict(store, config, universe=[s for s in symbols if s != "S000"])
    trained = result.document["model"]["training_rows"]
    # S000's member rows are in the training rows, S001's rows before it joined are not
    assert trained != plain.document["model"]["training_rows"]
    member_rows = features.filter(
        ((pl.col("symbol") != "S000") | (pl.col("date") <= left))
        & ((pl.col("symbol") != "S001") | (pl.col("date") >= joined)))
    direct = train_and_score(member_rows, prices, calendar.next_session(days[-1]), config,
                             symbols=symbols, members=[s for s in symbols if s != "S000"])
    assert direct.scores.drop("baseline_score").equals(result.scores.drop("baseline_score"))
    # the linear baseline sums its rows in stored order: the last bits may differ
    assert (direct.scores["baseline_score"] - result.scores["baseline_score"]).abs().max() \
        < 1e-12
    assert direct.model["training_rows"] == trained
