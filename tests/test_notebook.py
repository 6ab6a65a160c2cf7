"""The notebook front door: `aurora.open` views (pinned, filtered, verified) and `diff`."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

import aurora
from aurora.atomic import sha256_file
from aurora.config import AlpacaConfig, AuroraConfig, FetchConfig
from aurora.errors import StoreError
from aurora.fetch import fetch_prices
from aurora.schemas import PRICES_SCHEMA
from aurora.store import Store
from aurora.store import versions as store_versions
from aurora.universe import Universe

TESTS = Path(__file__).parent


def _helper(name: str, path: Path):
    """Load a helper module of another test directory (the suite uses importlib mode)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


fakeapi = _helper("fetch_fakeapi", TESTS / "fetch" / "fakeapi.py")
ops_helpers = _helper("ops_helpers", TESTS / "ops" / "ops_helpers.py")
publish = ops_helpers.publish

D = dt.date
SYMBOLS = ["AAA", "BBB", "CCC"]
DAYS = [D(2024, 1, 2), D(2024, 1, 3), D(2024, 1, 4), D(2024, 1, 5), D(2024, 1, 8)]


# -- stores -----------------------------------------------------------------------------
def prices_frame(symbols=SYMBOLS, days=DAYS) -> pl.DataFrame:
    """Full-schema bars; vwap is null on the first day (null == null must compare equal)."""
    rows = []
    for symbol in symbols:
        k = ord(symbol[0]) - ord("A")  # a symbol's bars do not depend on the others
        for i, day in enumerate(days):
            p = 10.0 * (k + 1) + i
            rows.append({"date": day, "symbol": symbol, "open": p, "high": p + 1,
                         "low": p - 1, "close": p + 0.5, "volume": 1000.0 + i,
                         "vwap": None if i == 0 else p + 0.25, "trade_count": 10 + i})
    return pl.DataFrame(rows, schema=PRICES_SCHEMA)


def features_frame(prices: pl.DataFrame, columns=("f_a", "f_b")) -> pl.DataFrame:
    """date, symbol, f_* as the build writes them; f_b is NaN on the first day."""
    first = pl.col("date") == pl.col("date").min()
    exprs = {"f_a": pl.col("close") / 10, "f_b": pl.when(first).then(float("nan"))
             .otherwise(pl.col("volume") - 1000), "f_c": pl.col("open") * 2}
    return prices.select("date", "symbol", *(exprs[c].alias(c) for c in columns))


PREDICTIONS_DOC = {
    "decision_date": "2024-01-09", "feature_date": "2024-01-08", "horizon": 5,
    "model": {"name": "lightgbm"},
    "predictions": [
        {"symbol": "CCC", "score": None, "rank": None, "percentile": None,
         "reason": "no features on 2024-01-08"},
        {"symbol": "BBB", "score": 0.25, "rank": 2, "percentile": 50.0},
        {"symbol": "AAA", "score": 0.75, "rank": 1, "percentile": 100.0},
    ],
}
EVALUATION_DOC = {
    "key": {"through": "2024-01-08"}, "status": "ok", "horizon": 5,
    "models": {"lightgbm": {"rank_ic": {"mean": 0.04}}},
    "daily": [
        {"model": "lightgbm", "date": "2024-01-03", "ic": 0.1, "rank_ic": 0.2, "n": 3},
        {"model": "baseline", "date": "2024-01-02", "ic": -0.1, "rank_ic": 0.0, "n": 3},
        {"model": "lightgbm", "date": "2024-01-02", "ic": 0.3, "rank_ic": None, "n": 2},
    ],
}


@pytest.fixture()
def made(data_dir):
    """A hand-made store: fetch (prices) -> build (features) -> predict (two documents)."""
    store = Store(data_dir)
    prices = prices_frame()
    versions = [publish(store, "fetch", **{"prices.parquet": prices}),
                publish(store, "build", **{"features.parquet": features_frame(prices)}),
                publish(store, "predict", **{"predictions.json": PREDICTIONS_DOC,
                                             "evaluation.json": EVALUATION_DOC})]
    return store, versions


def fetch_config(data_dir: Path) -> AuroraConfig:
    return AuroraConfig(data_dir=data_dir, fetch=FetchConfig(batch_size=2),
                        alpaca=AlpacaConfig(key_id=fakeapi.KEY, secret_key=fakeapi.SECRET,
                                            data_url="http://api.test",
                                            base_url="http://api.test"))


@pytest.fixture(scope="module")
def fetched(tmp_path_factory):
    """Two fetches over the fake Alpaca API: through Feb 29, then through Mar 7 after the
    server restated BBB's close of Feb 27 (inside the incremental overlap)."""
    data_dir = tmp_path_factory.mktemp("fetched") / "data"
    clock = fakeapi.FakeClock()
    bars = fakeapi.make_bars(SYMBOLS, D(2024, 1, 2), D(2024, 3, 28))
    api = fakeapi.FakeAlpaca(bars)
    universe = Universe(tuple(SYMBOLS), {}, "test universe")

    def fetch(end: dt.date) -> str:
        fetch_prices(fetch_config(data_dir), universe=universe, start=D(2024, 1, 2), end=end,
                     progress=None, sleep=clock.sleep, clock=clock.time,
                     transport=api.transport())
        version = Store(data_dir).current_version()
        assert version is not None
        return version

    v1 = fetch(D(2024, 2, 29))
    revised = next(b for b in bars["BBB"] if b["t"].startswith("2024-02-27"))
    original_close = revised["c"]
    revised["c"] = original_close * 1.002
    v2 = fetch(D(2024, 3, 7))
    return data_dir, v1, v2, original_close


# -- diff after an incremental fetch ----------------------------------------------------
NEW_DAYS = [D(2024, 3, 1), D(2024, 3, 4), D(2024, 3, 5), D(2024, 3, 6), D(2024, 3, 7)]


def test_diff_names_the_restated_bar_and_the_new_sessions(fetched):
    data_dir, v1, v2, _ = fetched
    store = aurora.open(data_dir)
    assert store.version == v2
    d = store.diff(v1)
    assert (d.before, d.after) == (v1, v2)
    files = dict(d.files.select("name", "change").iter_rows())
    assert files["prices.index.json"] == "changed" and files["universe.txt"] == "same"
    assert files["prices/year=2024/part-0.parquet"] == "changed"
    changed = d.prices.filter(pl.col("change") == "changed")
    assert changed.rows() == [("BBB", D(2024, 2, 27), "changed", ["close"])]
    added = d.prices.filter(pl.col("change") == "added")
    assert added.height == 3 * 5 and sorted(set(added["date"])) == NEW_DAYS
    assert set(d.prices["change"]) == {"added", "changed"}
    assert d.dates.rows() == [(day, "added") for day in NEW_DAYS]
    assert d.symbols.height == 0 and d.features.height == 0 and not d.unchanged
    summary = "\n".join(d.summary_lines())
    assert "prices.index.json changed" in summary
    assert "first BBB 2024-02-27: close" in summary and "dates added: 5" in summary
    assert repr(d).startswith(f"VersionDiff({v1} -> {v2}; files: ")
    # the module function and an explicit v2 say the same
    again = aurora.diff(data_dir, v1, v2)
    assert again.prices.equals(d.prices) and again.files.equals(d.files)
    # and the reverse direction mirrors it
    back = store.at(v1).diff(v2)
    assert back.dates.rows() == [(day, "removed") for day in NEW_DAYS]
    assert back.prices.filter(pl.col("change") == "changed")["symbol"].to_list() == ["BBB"]


def test_an_old_version_still_reads_its_own_prices(fetched):
    data_dir, v1, v2, original_close = fetched
    store = aurora.open(data_dir)
    old = store.at(v1)
    assert old.version == v1 and old.manifest.version == v1
    prices = old.prices()
    assert prices.height == 3 * 41 and prices["date"].max() == D(2024, 2, 29)
    bar = old.prices("BBB", start="2024-02-27", end="2024-02-27")
    assert bar["close"].to_list() == [original_close]
    assert store.prices("BBB", "2024-02-27", "2024-02-27")["close"].to_list() == [
        original_close * 1.002]
    versions = store.versions()
    assert versions.select("version", "stage", "parent", "universe_size", "is_latest").rows() \
        == [(v1, "fetch", None, 3, False), (v2, "fetch", v1, 3, True)]
    assert versions.schema["created_at"] == pl.Datetime("us", "UTC")
    assert old.universe() == SYMBOLS


# -- pinning ----------------------------------------------------------------------------
def test_a_view_stays_pinned_while_a_run_publishes(made):
    store, versions = made
    view = aurora.open(store.root)
    assert view.version == versions[-1]
    before = view.prices()
    newer = publish(store, "fetch", **{"prices.parquet": prices_frame(days=[*DAYS,
                                                                          D(2024, 1, 9)])})
    assert view.version == versions[-1] and view.prices().equals(before)
    fresh = view.refresh()
    assert fresh.version == newer and fresh.prices()["date"].max() == D(2024, 1, 9)
    flags = dict(view.versions().select("version", "is_latest").iter_rows())
    assert flags == {**dict.fromkeys(versions, False), newer: True}
    assert view.versions()["version"].to_list() == [*versions, newer]


# -- filters ----------------------------------------------------------------------------
def test_price_filters_return_exactly_the_requested_rows(made):
    store, _ = made
    view = aurora.open(store.root)
    everything = view.prices()
    assert everything.columns == ["symbol", "date", "open", "high", "low", "close", "volume",
                                  "vwap", "trade_count"]
    assert everything.height == 15 and everything.select("symbol", "date").rows() == sorted(
        (s, d) for s in SYMBOLS for d in DAYS)
    one = view.prices("bbb", start="2024-01-03", end=D(2024, 1, 5), columns=["close"])
    assert one.columns == ["symbol", "date", "close"]
    assert one.rows() == [("BBB", D(2024, 1, 3), 21.5), ("BBB", D(2024, 1, 4), 22.5),
                          ("BBB", D(2024, 1, 5), 23.5)]
    two = view.prices(["CCC", "AAA"], end="2024-01-03", columns=["volume", "open"])
    assert two.columns == ["symbol", "date", "volume", "open"]
    assert two.select("symbol", "date").rows() == [
        ("AAA", D(2024, 1, 2)), ("AAA", D(2024, 1, 3)), ("CCC", D(2024, 1, 2)),
        ("CCC", D(2024, 1, 3))]
    assert view.prices(start=dt.datetime(2024, 1, 8, 15, 30))["date"].unique().to_list() == [
        D(2024, 1, 8)]
    assert view.prices("ZZZ").height == 0 and view.prices(start="2024-02-01").height == 0
    with pytest.raises(ValueError, match=r"prices.parquet of version .* has no column 'clse'"
                                         r".*did you mean close"):
        view.prices(columns=["clse"])
    with pytest.raises(ValueError, match="start: '2024-13-01' is not a date"):
        view.prices(start="2024-13-01")
    with pytest.raises(TypeError, match="symbols"):
        view.prices(symbols=[1, 2])


def test_feature_filters_and_columns(made):
    store, _ = made
    view = aurora.open(store.root)
    assert view.features().columns == ["symbol", "date", "f_a", "f_b"]
    picked = view.features(["AAA"], start="2024-01-05", columns=["f_b"])
    assert picked.rows() == [("AAA", D(2024, 1, 5), 3.0), ("AAA", D(2024, 1, 8), 4.0)]


# -- documents --------------------------------------------------------------------------
def test_predictions_and_evaluation_frames(made):
    store, _ = made
    view = aurora.open(store.root)
    predictions = view.predictions()
    assert predictions.columns == ["symbol", "score", "rank", "percentile", "reason",
                                   "decision_date", "feature_date", "horizon"]
    assert predictions.select("symbol", "rank", "reason").rows() == [
        ("AAA", 1, None), ("BBB", 2, None), ("CCC", None, "no features on 2024-01-08")]
    assert set(predictions["decision_date"]) == {D(2024, 1, 9)}
    assert set(predictions["feature_date"]) == {D(2024, 1, 8)}
    assert set(predictions["horizon"]) == {5}
    assert view.prediction_document() == PREDICTIONS_DOC
    daily = view.evaluation()
    assert daily.schema == pl.Schema({"model": pl.String, "date": pl.Date, "ic": pl.Float64,
                                      "rank_ic": pl.Float64, "n": pl.Int64})
    assert daily.rows() == [("baseline", D(2024, 1, 2), -0.1, 0.0, 3),
                            ("lightgbm", D(2024, 1, 2), 0.3, None, 2),
                            ("lightgbm", D(2024, 1, 3), 0.1, 0.2, 3)]
    assert view.evaluation_summary() == {"status": "ok", "horizon": 5,
                                         "models": {"lightgbm": {"rank_ic": {"mean": 0.04}}}}


# -- diff of hand-made versions ---------------------------------------------------------
def test_diff_reports_symbols_columns_and_rows_with_exact_equality(made):
    store, versions = made
    prices = prices_frame()
    revised = prices_frame(["BBB", "CCC", "DDD"]).with_columns(
        volume=pl.when((pl.col("symbol") == "CCC") & (pl.col("date") == D(2024, 1, 4)))
        .then(pl.col("volume") + 1).otherwise(pl.col("volume")),
        vwap=pl.when((pl.col("symbol") == "BBB") & (pl.col("date") == D(2024, 1, 8)))
        .then(None).otherwise(pl.col("vwap")))
    v4 = publish(store, "fetch", **{"prices.parquet": revised})
    v5 = publish(store, "build", **{"features.parquet": features_frame(
        revised, ("f_b", "f_c"))})
    d = aurora.open(store.root).diff(versions[1])
    assert (d.before, d.after) == (versions[1], v5)
    assert d.symbols.rows() == [("AAA", "removed", "prices"), ("AAA", "removed", "universe"),
                                ("DDD", "added", "prices"), ("DDD", "added", "universe")]
    assert d.dates.height == 0
    changed = d.prices.filter(pl.col("change") == "changed")
    assert changed.rows() == [("BBB", D(2024, 1, 8), "changed", ["vwap"]),
                              ("CCC", D(2024, 1, 4), "changed", ["volume"])]
    assert d.prices.filter(pl.col("change") == "removed")["symbol"].unique().to_list() == ["AAA"]
    assert d.prices.filter(pl.col("change") == "added")["symbol"].unique().to_list() == ["DDD"]
    assert d.feature_columns.rows() == [("f_a", "removed"), ("f_c", "added")]
    # f_b is NaN on the first day in both and otherwise volume - 1000: only CCC Jan 4 moves
    feature_changes = d.features.filter(pl.col("change") == "changed")
    assert feature_changes.rows() == [("CCC", D(2024, 1, 4), "changed", ["f_b"])]
    assert d.files.select("name", "change").rows() == [
        ("evaluation.json", "added"), ("features.parquet", "changed"),
        ("predictions.json", "added"), ("prices.parquet", "changed")]
    assert d.files.filter(pl.col("change") == "added")["sha256_before"].is_null().all()
    lines = d.summary_lines()
    assert "symbols added (prices): DDD" in lines and "feature columns removed: f_a" in lines
    # the first fetch and the build over it share prices.parquet: nothing is read
    same = aurora.open(store.root).diff(versions[0], versions[1])
    assert same.prices.height == 0 and same.dates.height == 0 and same.symbols.height == 0
    assert same.feature_columns.rows() == [("f_a", "added"), ("f_b", "added")]
    assert same.features.height == prices.height and set(same.features["change"]) == {"added"}
    assert aurora.open(store.root).diff(v4, v4).unchanged


def test_identical_prices_are_not_read(made):
    store, versions = made
    view = aurora.open(store.root)
    flip_byte(store.archive / versions[1] / "prices.parquet")  # shared with versions[0]
    d = view.diff(versions[0], versions[1])  # would raise StoreError if prices were read
    assert d.prices.height == 0 and d.files.filter(pl.col("name") == "prices.parquet").row(
        0)[1] == "same"


# -- verification and errors ------------------------------------------------------------
def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_each_file_is_verified_once_per_view(made, monkeypatch):
    store, _ = made
    calls: list[str] = []
    real = store_versions.sha256_file
    monkeypatch.setattr(store_versions, "sha256_file",
                        lambda p: calls.append(p.name) or real(p))
    view = aurora.open(store.root)
    view.prices()
    view.prices("AAA")
    view.features()
    assert calls == ["prices.parquet", "features.parquet"]
    view.refresh().prices()
    assert calls.count("prices.parquet") == 2


def test_a_corrupt_file_is_refused_naming_file_and_version(made):
    store, versions = made
    flip_byte(store.archive / versions[-1] / "prices.parquet")
    view = aurora.open(store.root)
    with pytest.raises(StoreError) as info:
        view.prices()
    message = str(info.value)
    assert "prices.parquet" in message and versions[-1] in message
    assert "does not match its manifest" in message and "\n" not in message
    assert view.features().height == 15  # other files are still readable


def test_a_missing_file_names_the_command_that_makes_it(made):
    store, versions = made
    first = aurora.open(store.root).at(versions[0])
    with pytest.raises(StoreError, match=rf"version {versions[0]} holds no features.parquet: "
                                         r"run `aurora build` \(the latest version .* has it"):
        first.features()
    with pytest.raises(StoreError, match="run `aurora predict`"):
        first.predictions()
    with pytest.raises(StoreError, match="run `aurora fetch`"):
        first.corporate_actions()


def test_opening_what_is_not_a_store(tmp_path, data_dir):
    here, data = re.escape(str(tmp_path)), re.escape(str(data_dir))
    with pytest.raises(StoreError, match=rf"^{here}/nowhere: no such directory"):
        aurora.open(tmp_path / "nowhere")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(StoreError, match=rf"^{here}/notes.txt: not a directory"):
        aurora.open(tmp_path / "notes.txt")
    with pytest.raises(StoreError, match=rf"^{data}: not an Aurora store"):
        aurora.open(data_dir)
    (data_dir / "archive").mkdir()
    with pytest.raises(StoreError, match=rf"^{data}: the store is empty"):
        aurora.open(data_dir)
    publish(Store(data_dir), "fetch", **{"prices.parquet": prices_frame()})
    with pytest.raises(StoreError, match=rf"^{here}: not an Aurora store .*did you mean "
                                         rf"{data}\?$"):
        aurora.open(tmp_path)


def test_an_unknown_version_lists_the_newest(made):
    store, versions = made
    view = aurora.open(store.root)
    with pytest.raises(StoreError) as info:
        view.at("20990101T000000000000Z-fetch")
    message = str(info.value)
    assert "'20990101T000000000000Z-fetch' does not exist" in message
    assert f"newest: {versions[2]}, {versions[1]}, {versions[0]}" in message
    with pytest.raises(StoreError, match="does not exist"):
        aurora.open(store.root, "../archive")
    with pytest.raises(StoreError, match="does not exist"):
        view.diff("nope")


def test_a_document_that_is_not_json_is_one_line(made):
    store, versions = made
    path = store.archive / versions[-1] / "predictions.json"
    path.unlink()  # a fresh inode: the document is not shared with other versions
    path.write_text("{not json")
    manifest_path = store.archive / versions[-1] / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["predictions.json"]["sha256"] = sha256_file(path)
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(StoreError, match=rf"predictions.json of version {versions[-1]} is "
                                         "not valid JSON"):
        aurora.open(store.root).predictions()


# -- import weight ----------------------------------------------------------------------
def test_import_aurora_is_light():
    code = ("import sys, aurora; heavy = ('lightgbm', 'exchange_calendars'); "
            "loaded = lambda: sorted(m for m in sys.modules if m.split('.')[0] in heavy); "
            "first = loaded(); aurora.open; aurora.VersionDiff; "
            "print(first, loaded(), sorted(aurora.__all__))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[] [] ['StoreView', 'VersionDiff', 'diff', 'open']"


def test_adjusted_prices_are_the_build_s_point_in_time_prices(made):
    store, _ = made
    view = aurora.open(store.root)
    raw = view.prices("AAA")
    adjusted = view.prices("AAA", adjusted=True)
    assert adjusted.height == raw.height and "dollar_volume" in adjusted.columns
    assert (adjusted["dollar_volume"] - raw["close"] * raw["volume"]).abs().max() < 1e-6
    later = view.prices("AAA", start=raw["date"][2], adjusted=True)
    assert later.equals(adjusted.slice(2))  # computed on the whole history, then filtered


def test_the_membership_of_a_dated_universe(tmp_path):
    import datetime as dt

    import aurora
    from aurora.store import Store
    from aurora.universe import as_universe

    frame = pl.DataFrame({"symbol": ["AAPL", "XOM"], "start": [dt.date(2015, 1, 2)] * 2,
                          "end": [None, dt.date(2016, 1, 4)]})
    store = Store(tmp_path / "data")
    with store.transaction("test", base=None, universe=as_universe(frame).record()) as txn:
        txn.path("note.txt").write_text("x")
    view = aurora.open(tmp_path / "data")
    assert view.universe() == ["AAPL", "XOM"]
    assert view.membership().equals(frame.with_columns(pl.col("end").cast(pl.Date)))
