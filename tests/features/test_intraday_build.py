"""The intraday family in a build: computed from the stored minute bars, judged from their
first day, incremental like the rest (a restated minute day makes a full build), and
refused where it cannot run."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from aurora.config import AuroraConfig, BuildConfig, ComputeConfig
from aurora.errors import ConfigError, DataValidationError, StoreError
from aurora.features import intradayfamily
from aurora.features.builder import build_features
from aurora.intraday.daily import daily_fields, summarizer
from aurora.intraday.store import intraday_store, write_days
from aurora.schemas import INTRADAY_SCHEMA
from aurora.store import Store
from aurora.store.datasets import read_features
from aurora_testbed.synthetic.minutes import minute_bars

from .conftest import random_panel
from .test_build import _seed

PANEL = random_panel(n_sessions=330, seed=5)
DATES = sorted(PANEL["date"].unique().to_list())
MINUTE_DAYS = DATES[-45:]
INTRADAY_NAMES = ["f_rv_5min_20d", "f_ret_first_30min", "f_ret_last_30min",
                  "f_close_vwap_gap", "f_volume_share_last_30min_5d"]


def _minutes(days: list) -> pl.DataFrame:
    daily = PANEL.filter(pl.col("date").is_in(days))
    return minute_bars(daily, 1).with_columns(
        date=pl.col("timestamp").dt.convert_time_zone("America/New_York").dt.date()
    ).select(list(INTRADAY_SCHEMA)).cast(INTRADAY_SCHEMA)  # type: ignore[arg-type]


def _store_minutes(data, minutes: pl.DataFrame, summarize=None) -> None:
    store = intraday_store(data, "1Min")
    with store.transaction("fetch-1min", base=store.current_version()) as txn:
        write_days(txn, minutes, summarize)


def _config(data, **build) -> AuroraConfig:
    return AuroraConfig(data_dir=data, build=BuildConfig(intraday=True, **build))


@pytest.fixture(scope="module")
def minutes() -> pl.DataFrame:
    return _minutes(MINUTE_DAYS)


def test_a_build_with_intraday_adds_the_family_from_the_stored_minutes(tmp_path, minutes):
    data = tmp_path / "data"
    store = Store(data)
    _seed(store, PANEL)
    _store_minutes(data, minutes)
    result = build_features(store, _config(data), lookahead=True)
    assert result.gates.passed
    meta = result.meta
    assert meta["feature_count"] == 50 and meta["feature_types"]["intraday"] == 5
    assert meta["intraday"]["days"] == len(MINUTE_DAYS)
    assert "intraday features from 45 stored day(s) of 1Min bars" in "\n".join(
        result.summary_lines())
    got = read_features(store)
    assert got.columns[-5:] == INTRADAY_NAMES
    fields = daily_fields(minutes)
    joined = got.join(fields, on=["symbol", "date"], how="left")
    early = joined.filter(pl.col("date") < MINUTE_DAYS[0])
    assert early.height and early["f_ret_first_30min"].null_count() == early.height
    late = joined.filter(pl.col("date") >= MINUTE_DAYS[0])
    assert late["f_ret_first_30min"].to_list() == late["intraday_ret_first_30min"].to_list()
    assert late["f_close_vwap_gap"].to_list() == late["intraday_close_vwap_gap"].to_list()
    # the 20-session realised volatility, independently: a rolling mean in pandas
    one = fields.filter(pl.col("symbol") == "AAA").to_pandas().set_index("date")
    want = np.sqrt(one["intraday_rv_5min"].rolling(20).mean())
    have = got.filter(pl.col("symbol") == "AAA").to_pandas().set_index("date")
    both = want.dropna().index
    assert len(both) == len(MINUTE_DAYS) - 19
    np.testing.assert_allclose(have.loc[both, "f_rv_5min_20d"], want.loc[both], rtol=1e-12)
    share = one["intraday_volume_share_last_30min"].rolling(5).mean().dropna()
    np.testing.assert_allclose(have.loc[share.index, "f_volume_share_last_30min_5d"], share,
                               rtol=1e-12)
    assert all(math.isfinite(v) for v in have.loc[both, "f_ret_last_30min"])


def test_the_default_build_stays_at_45(tmp_path, minutes):
    data = tmp_path / "data"
    store = Store(data)
    _seed(store, PANEL)
    _store_minutes(data, minutes)
    result = build_features(store, AuroraConfig(data_dir=data), lookahead=False)
    assert result.meta["feature_count"] == 45 and "intraday" not in result.meta


def test_intraday_builds_are_incremental_and_a_restated_minute_day_makes_a_full_one(
        tmp_path, minutes, monkeypatch):
    data = tmp_path / "data"
    store, config = Store(data), _config(data)
    cut = DATES[-6]
    _seed(store, PANEL.filter(pl.col("date") <= cut))
    # the earlier days with their fields stored (as a fetch writes them), the later without
    _store_minutes(data, minutes.filter(pl.col("date") <= cut), summarizer("1Min"))
    build_features(store, config, lookahead=False)
    _seed(store, PANEL)
    _store_minutes(data, minutes.filter(pl.col("date") > cut))
    result = build_features(store, config, lookahead=False)
    assert result.meta["build"]["mode"] == "incremental", result.meta["build"]
    incremental = read_features(store)
    full = build_features(store, config, lookahead=False, incremental=False)
    assert full.meta["build"]["mode"] == "full"
    whole = read_features(store)
    assert incremental.select("symbol", "date").equals(whole.select("symbol", "date"))
    for name in INTRADAY_NAMES:
        np.testing.assert_allclose(incremental[name].to_numpy(), whole[name].to_numpy(),
                                   rtol=1e-9, equal_nan=True, err_msg=name)
    # a minute day before the last build restated: the next build is a full one, and says why
    day = MINUTE_DAYS[3]
    _store_minutes(data, minutes.filter(pl.col("date") == day)
                   .with_columns(pl.col("close") * 1.01))
    _seed(store, PANEL)
    again = build_features(store, config, lookahead=False)
    assert again.meta["build"]["mode"] == "full"
    assert again.meta["build"]["reason"] == f"the 1Min bars up to {DATES[-1]} changed"
    # new definitions of the fields (their dataset's name changes with them): a full build
    _seed(store, PANEL)
    monkeypatch.setattr(intradayfamily, "FIELDS_DATASET", "fields_v2")
    redefined = build_features(store, config, lookahead=False)
    assert redefined.meta["build"]["reason"] == "the intraday fields' definitions changed"


def test_a_build_records_the_minute_store_version_it_read(tmp_path, minutes):
    """A fetch publishing minute bars during a build does not enter its record: the next
    build compares against what this one read."""
    data = tmp_path / "data"
    store = Store(data)
    _seed(store, PANEL)
    _store_minutes(data, minutes)
    read = intraday_store(data, "1Min").current_version()

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "gates" and done == 0:
            _store_minutes(data, minutes.filter(pl.col("date") == MINUTE_DAYS[5])
                           .with_columns(pl.col("close") * 1.01))

    result = build_features(store, _config(data), lookahead=False, progress=progress)
    assert result.meta["intraday"]["version"] == read
    assert intraday_store(data, "1Min").current_version() != read


def test_without_stored_minutes_the_build_says_what_to_fetch(tmp_path):
    data = tmp_path / "data"
    store = Store(data)
    _seed(store, PANEL)
    before = store.current_version()
    with pytest.raises(StoreError, match=r"aurora fetch --timeframe 1Min"):
        build_features(store, _config(data), lookahead=False)
    assert store.current_version() == before


def test_an_out_of_core_build_with_the_family_equals_the_in_memory_one(tmp_path, minutes):
    """Out of core, each year task joins the intraday fields the scan wrote to the exchange
    for its year: the same features as in memory, the same gates."""
    data = tmp_path / "data"
    store = Store(data)
    _seed(store, PANEL)
    _store_minutes(data, minutes)
    build_features(store, _config(data), incremental=False)
    in_memory = read_features(store)
    config = AuroraConfig(data_dir=data, build=BuildConfig(intraday=True),
                          compute=ComputeConfig(out_of_core=True, block_months=3))
    result = build_features(store, config)
    assert result.gates.passed and result.meta["build"]["out_of_core"]
    out_of_core = read_features(store)
    assert out_of_core.select("symbol", "date").equals(in_memory.select("symbol", "date"))
    for name in INTRADAY_NAMES:
        np.testing.assert_allclose(out_of_core[name].to_numpy(), in_memory[name].to_numpy(),
                                   rtol=1e-12, equal_nan=True, err_msg=name)


def test_a_lookahead_in_the_intraday_inputs_is_caught(tmp_path, minutes):
    """The lookahead proof perturbs the intraday fields after its cutoff too: a user
    feature reading tomorrow's first half hour fails it."""
    data = tmp_path / "data"
    store = Store(data)
    _seed(store, PANEL)
    _store_minutes(data, minutes)
    features = tmp_path / "peek.py"
    features.write_text(
        "import numpy as np\n"
        "from aurora.features import custom, intraday_ret_first_30min\n"
        "def tomorrow(x):\n"
        "    out = np.full_like(x, np.nan)\n"
        "    out[:, :-1] = x[:, 1:]\n"
        "    return out\n"
        "FEATURES = {'f_peek': custom(tomorrow, intraday_ret_first_30min, lookback=0)}\n")
    with pytest.raises(DataValidationError, match="f_peek"):
        build_features(store, _config(data, features=features))


def test_a_user_feature_reading_intraday_fields_needs_the_family(tmp_path):
    from aurora.features.featureset import FeatureSet

    path = tmp_path / "mine.toml"
    path.write_text('[features]\nf_late_rank = "Rank(intraday_ret_last_30min)"\n')
    config = AuroraConfig(data_dir=tmp_path, build=BuildConfig(features=path))
    with pytest.raises(ConfigError, match=r"mine\.toml: f_late_rank read\(s\) intraday "
                                          r"fields: .*build\.intraday = true"):
        FeatureSet.configured(config)
    both = AuroraConfig(data_dir=tmp_path, build=BuildConfig(features=path, intraday=True))
    assert list(FeatureSet.configured(both).added)[-1] == "f_late_rank"


def test_five_minute_bars_give_the_family_the_one_minute_bars_give(tmp_path, minutes):
    """`build.intraday_timeframe = "5Min"`: the same days in 5-minute bars (the minutes
    aggregated as Alpaca aggregates them) give the same features as the 1-minute bars."""
    five = (minutes.sort("symbol", "timestamp")
            .group_by_dynamic("timestamp", every="5m", group_by=["symbol", "date"])
            .agg(pl.col("open").first(), pl.col("high").max(), pl.col("low").min(),
                 pl.col("close").last(), pl.col("volume").sum(),
                 ((pl.col("vwap") * pl.col("volume")).sum() / pl.col("volume").sum())
                 .alias("vwap"), pl.col("trade_count").sum())
            .select(list(INTRADAY_SCHEMA)).cast(INTRADAY_SCHEMA))  # type: ignore[arg-type]
    built = {}
    for timeframe, bars in (("1Min", minutes), ("5Min", five)):
        data = tmp_path / timeframe / "data"
        store = Store(data)
        _seed(store, PANEL)
        istore = intraday_store(data, timeframe)
        with istore.transaction("fetch", base=None) as txn:
            write_days(txn, bars, summarizer(timeframe))
        config = AuroraConfig(data_dir=data, build=BuildConfig(
            intraday=True, intraday_timeframe=timeframe))
        assert build_features(store, config, lookahead=False).meta["intraday"][
            "timeframe"] == timeframe
        built[timeframe] = read_features(store)
    for name in INTRADAY_NAMES:
        assert built["5Min"][name].drop_nulls().len() > 100, name
        np.testing.assert_allclose(built["5Min"][name].to_numpy(),
                                   built["1Min"][name].to_numpy(), rtol=1e-9, atol=1e-15,
                                   equal_nan=True, err_msg=name)


def test_the_command_builds_the_family_and_says_what_to_fetch_without_minutes(
        tmp_path, minutes, capsys):
    from aurora.cli.main import main

    data = tmp_path / "data"
    _seed(Store(data), PANEL)
    capsys.readouterr()
    assert main(["build", "--data-dir", str(data), "--intraday", "--no-progress"]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "aurora fetch --timeframe 1Min" in err
    _store_minutes(data, minutes, summarizer("1Min"))
    assert main(["build", "--data-dir", str(data), "--intraday", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "built 50 features (price 15, volume 10, cross_sectional 12, residual 8, " \
           "intraday 5)" in out
    assert f"intraday features from {len(MINUTE_DAYS)} stored day(s) of 1Min bars" in out
