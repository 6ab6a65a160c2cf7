"""Your own features in a build: a TOML file of three features matches pandas, a Python
file whose custom function reads the future is refused by the lookahead proof, a syntax
error names its line and column; the default build still has exactly 45 features."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from aurora.cli.main import main
from aurora.config import AuroraConfig, BuildConfig
from aurora.errors import DataValidationError
from aurora.features.builder import build_features
from aurora.features.registry import FEATURE_NAMES
from aurora.store import Store
from aurora.store.datasets import read_features

from .conftest import SECTORS
from .test_build import _seed

TOML = '''# three features of my own
[features]
f_ret_10d = "close / Ref(close, 10) - 1"
f_sector_rank_range = "Rank((high - low) / close, sector)"
f_corr_close_volume_20d = "Corr(close, Log(volume + 1), 20)"
'''


def _config(data_dir, path) -> AuroraConfig:
    return AuroraConfig(data_dir=data_dir, build=BuildConfig(features=path))


def test_three_toml_features_build_and_match_pandas(data_dir, panel, tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(TOML)
    store = Store(data_dir)
    _seed(store, panel)
    result = build_features(store, _config(data_dir, path))
    assert result.gates.passed
    frame = read_features(store)
    mine = ["f_ret_10d", "f_sector_rank_range", "f_corr_close_volume_20d"]
    assert frame.columns == ["date", "symbol", *FEATURE_NAMES, *mine]
    meta = json.loads(store.verified_path("features.meta.json").read_text())
    assert meta["feature_count"] == 48 and meta["feature_types"]["user"] == 3
    assert meta["user_features"]["names"] == mine and meta["user_features"]["source"] == str(path)
    listed = {f["name"]: f for f in meta["features"]}
    assert listed["f_ret_10d"] == {"name": "f_ret_10d", "family": "user", "lookback": 10,
                                   "expression": "(close / Ref(close, 10)) - 1"}
    assert listed["f_corr_close_volume_20d"]["lookback"] == 19

    # an independent pandas computation on the same (adjusted: no actions here) bars
    bars = panel.to_pandas().sort_values(["symbol", "date"])
    by = bars.groupby("symbol")
    bars["ret10"] = by["close"].transform(lambda c: c / c.shift(10) - 1)
    bars["range"] = (bars["high"] - bars["low"]) / bars["close"]
    bars["sector"] = bars["symbol"].map(SECTORS)
    bars["srank"] = bars.groupby(["date", "sector"])["range"].rank(pct=True)
    bars["logv"] = np.log(bars["volume"] + 1)
    bars["corr"] = by[["close", "logv"]].apply(
        lambda g: g["close"].rolling(20, min_periods=16).corr(g["logv"])).reset_index(
        level=0, drop=True)
    expected = pl.from_pandas(bars[["date", "symbol", "ret10", "srank", "corr"]]).with_columns(
        pl.col("date").cast(pl.Date))
    got = frame.select("date", "symbol", *mine).join(expected, on=["date", "symbol"])
    assert got.height == frame.height  # every emitted row has its pandas counterpart
    for ours, theirs in zip(mine, ["ret10", "srank", "corr"], strict=True):
        a, b = got[ours].to_numpy(), got[theirs].to_numpy()
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=ours)


def test_a_custom_function_that_reads_the_future_is_refused(data_dir, panel, tmp_path):
    path = tmp_path / "peek.py"
    path.write_text(
        "import numpy as np\n"
        "from aurora.features import close, custom\n\n"
        "def tomorrow(c):\n"
        "    out = np.full_like(c, np.nan)\n"
        "    out[:, :-1] = c[:, 1:]  # the next session's close: the future\n"
        "    return out\n\n"
        "FEATURES = {\n"
        "    'f_honest': custom(np.log, close, lookback=0),\n"
        "    'f_peek': custom(tomorrow, close, lookback=0),\n"
        "}\n")
    store = Store(data_dir)
    _seed(store, panel)
    before = store.current_version()
    with pytest.raises(DataValidationError) as err:
        build_features(store, _config(data_dir, path))
    message = str(err.value)
    assert "lookahead" in message and "f_peek" in message and "f_honest" not in message
    assert store.current_version() == before  # nothing published


def test_a_custom_function_writing_into_its_input_is_refused_naming_it(data_dir, panel,
                                                                         tmp_path):
    """Its inputs are other nodes' values and the panel's fields, which other features read
    too: they are read-only, and a function that writes into one fails the build."""
    path = tmp_path / "inplace.py"
    path.write_text(
        "import numpy as np\n"
        "from aurora.features import close, custom\n\n"
        "def zero_missing(c):\n"
        "    c[np.isnan(c)] = 0.0\n"
        "    return c\n\n"
        "FEATURES = {'f_filled': custom(zero_missing, close, lookback=0)}\n")
    store = Store(data_dir)
    _seed(store, panel)
    before = store.current_version()
    with pytest.raises(ValueError, match=r"f_filled.*read-only"):
        build_features(store, _config(data_dir, path), lookahead=False)
    assert store.current_version() == before


def test_a_syntax_error_names_line_and_column_through_the_cli(data_dir, panel, tmp_path,
                                                              capsys):
    path = tmp_path / "bad.toml"
    path.write_text('[features]\nf_ok = "Mean(close, 5)"\nf_bad = "Mean(close, 5"\n')
    _seed(Store(data_dir), panel)
    capsys.readouterr()
    assert main(["build", "--data-dir", str(data_dir), "--features", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith(f"error: {path}:3:")
    assert "f_bad" in err or "(" in err


def test_the_default_build_still_has_45(data_dir, panel):
    store = Store(data_dir)
    _seed(store, panel)
    build_features(store, AuroraConfig(data_dir=data_dir), lookahead=False)
    frame = read_features(store)
    assert [c for c in frame.columns if c.startswith("f_")] == list(FEATURE_NAMES)
    meta = json.loads(store.verified_path("features.meta.json").read_text())
    assert meta["user_features"] is None and meta["feature_count"] == 45


def test_editing_a_custom_function_makes_the_next_build_full(data_dir, panel, tmp_path):
    """A custom function's body is not in its expression: the feature file's text is in
    the feature-set hash, so the next build does not reuse values of the old code."""
    path = tmp_path / "mine.py"
    source = ("from aurora.features import close, custom\n\n"
              "def scaled(c):\n    return c * {}\n\n"
              "FEATURES = {{'f_scaled': custom(scaled, close, lookback=0)}}\n")
    path.write_text(source.format(2))
    store = Store(data_dir)
    _seed(store, panel)
    build_features(store, _config(data_dir, path), lookahead=False)
    again = build_features(store, _config(data_dir, path), lookahead=False)
    assert again.meta["build"]["mode"] == "incremental"
    path.write_text(source.format(3))
    edited = build_features(store, _config(data_dir, path), lookahead=False)
    assert (edited.meta["build"]["mode"], edited.meta["build"]["reason"]) == (
        "full", "the feature set changed (--features)")
    frame = read_features(store)
    close = panel.join(frame.select("symbol", "date", "f_scaled"), on=["symbol", "date"])
    assert ((close["f_scaled"] - 3 * close["close"]).abs() < 1e-9).all()


def test_a_feature_that_is_a_field_is_that_field_and_a_constant_is_refused(panel, tmp_path):
    """A root that is a bare field is emitted like a computed node (it was left unwritten),
    masked outside each symbol's span; a constant is no feature."""
    from aurora.features import close, compute_features
    from aurora.features.expr import Const
    from aurora.features.grammar import FeatureDefinitionError
    from aurora.features.userfeatures import load_user_features

    got = compute_features(panel, sectors=None, extra={"f_close": close})
    joined = got.join(panel.select("symbol", "date", "close"), on=["symbol", "date"],
                      how="left")
    assert joined["f_close"].to_list() == joined["close"].to_list()
    with pytest.raises(ValueError, match="f_one: a constant is not a feature"):
        compute_features(panel, sectors=None, extra={"f_one": Const(1.0)})
    path = tmp_path / "one.toml"
    path.write_text('[features]\nf_one = "2 * 3"\n')
    with pytest.raises(FeatureDefinitionError, match=r"one.toml:2:1: feature f_one: a constant"):
        load_user_features(path)
