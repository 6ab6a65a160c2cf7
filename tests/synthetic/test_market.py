"""generate_market: schema, determinism, calendar, corporate actions and renames."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aurora.adjustments import adjust_bars
from aurora.calendar import sessions
from aurora.errors import ConfigError
from aurora.universe import default_sectors, ticker_problem
from aurora_testbed.synthetic import ORIGIN, PLANTED_RENAMES, SyntheticMarket, generate_market
from aurora_testbed.synthetic.market import ACTIONS_SCHEMA, BARS_SCHEMA

from .conftest import END, START, with_returns

D = dt.date


def test_bars_follow_the_prices_schema_and_order(market: SyntheticMarket) -> None:
    bars = market.bars
    assert dict(bars.schema) == BARS_SCHEMA
    assert bars.equals(bars.sort("symbol", "date"))
    assert bars.select(pl.struct("symbol", "date").is_unique().all()).item()
    assert bars.null_count().sum_horizontal().item() == 0
    assert (bars["volume"] == bars["volume"].round(0)).all()
    assert (bars["volume"] >= 100).all()
    assert (bars["trade_count"] >= 1).all()
    assert dict(market.corporate_actions.schema) == ACTIONS_SCHEMA


def check_ohlc(bars: pl.DataFrame) -> None:
    top = pl.max_horizontal("open", "close")
    bottom = pl.min_horizontal("open", "close")
    bad = bars.filter(
        (pl.col("high") < top)
        | (pl.col("low") > bottom)
        | (pl.col("low") <= 0)
        | (pl.col("vwap") < pl.col("low"))
        | (pl.col("vwap") > pl.col("high"))
    )
    assert bad.height == 0, bad.head()


def test_ohlc_is_consistent_and_prices_positive(market: SyntheticMarket) -> None:
    check_ohlc(market.bars)


@settings(max_examples=12, deadline=None)
@given(
    symbols=st.lists(
        st.from_regex(r"[A-Z]{1,4}", fullmatch=True).filter(lambda s: ticker_problem(s) is None),
        min_size=1,
        max_size=4,
        unique=True,
    ),
    first=st.dates(ORIGIN, D(2004, 12, 31)),
    days=st.integers(0, 400),
    seed=st.integers(0, 2**32),
)
def test_any_request_gives_consistent_bars_on_exact_sessions(symbols, first, days, seed) -> None:
    last = first + dt.timedelta(days=days)
    renamed = {name for new, (old, _) in PLANTED_RENAMES.items() for name in (new, old)}
    symbols = [s for s in symbols if s not in renamed]
    if not symbols:
        return
    m = generate_market(symbols, first, last, seed=seed)
    check_ohlc(m.bars)
    expected = set(sessions(first, last))
    for symbol in symbols:
        have = m.bars.filter(pl.col("symbol") == symbol)["date"].to_list()
        gaps = pl.concat([m.halts, m.missing_bars]).filter(pl.col("symbol") == symbol)
        assert len(have) == len(set(have))
        assert set(have).isdisjoint(gaps["date"].to_list())
        assert set(have) | set(gaps["date"].to_list()) == expected


def test_sessions_are_nyse_sessions_minus_documented_gaps(market: SyntheticMarket) -> None:
    expected = sessions(START, END)
    gaps = pl.concat([market.halts, market.missing_bars])
    assert gaps.select(pl.struct("symbol", "date").is_unique().all()).item()
    per_symbol = market.bars.group_by("symbol").agg(pl.col("date"))
    for symbol, dates in per_symbol.iter_rows():
        gap_dates = gaps.filter(pl.col("symbol") == symbol)["date"].to_list()
        assert sorted(dates + gap_dates) == expected, symbol


def test_halts_and_missing_bars_are_rare_and_shaped(market: SyntheticMarket) -> None:
    symbol_years = len(market.symbols) * 3
    assert 0 < market.missing_bars.height < 0.15 * symbol_years
    assert 0 < market.halts.height < 0.15 * symbol_years
    all_sessions = sessions(START, END)
    index = {d: i for i, d in enumerate(all_sessions)}
    runs = (
        market.halts.with_columns(i=pl.col("date").replace_strict(index, return_dtype=pl.Int64))
        .with_columns(run=(pl.col("i").diff().over("symbol").fill_null(2) != 1).cum_sum())
        .group_by("symbol", "run")
        .len()
    )
    assert runs["len"].max() <= 3  # type: ignore[operator]


def test_same_bar_whatever_range_or_universe() -> None:
    one = generate_market(["AAPL", "MSFT", "ZZZQ"], D(2019, 1, 1), D(2019, 6, 30))
    two = generate_market(["NVDA", "ZZZQ", "AAPL"], D(2019, 3, 1), D(2019, 12, 31))
    window = (pl.col("date") >= D(2019, 3, 1)) & (pl.col("date") <= D(2019, 6, 30))
    for symbol in ("AAPL", "ZZZQ"):
        pick = window & (pl.col("symbol") == symbol)
        left, right = one.bars.filter(pick), two.bars.filter(pick)
        assert left.height > 70
        assert left.equals(right)
        for name in ("corporate_actions", "halts", "missing_bars"):
            date_col = "ex_date" if name == "corporate_actions" else "date"
            sel = (pl.col("symbol") == symbol) & pl.col(date_col).is_between(
                D(2019, 3, 1), D(2019, 6, 30)
            )
            assert getattr(one, name).filter(sel).equals(getattr(two, name).filter(sel))
    assert not one.bars.filter(pl.col("symbol") == "MSFT").is_empty()
    other_seed = generate_market(["AAPL"], D(2019, 3, 1), D(2019, 3, 29), seed=8)
    assert not other_seed.bars.equals(one.bars.filter(pick.and_(pl.col("date") < D(2019, 3, 30))))


def test_fixture_matches_a_single_name_request(market: SyntheticMarket) -> None:
    alone = generate_market(["JPM"], D(2020, 6, 1), D(2020, 6, 30))
    shared = market.bars.filter(
        (pl.col("symbol") == "JPM") & pl.col("date").is_between(D(2020, 6, 1), D(2020, 6, 30))
    )
    assert alone.bars.equals(shared)


def test_sectors_default_hash_and_override() -> None:
    m = generate_market(["AAPL", "QQQX"], D(2020, 1, 2), D(2020, 1, 3))
    assert m.sectors["AAPL"] == default_sectors()["AAPL"]
    again = generate_market(["QQQX"], D(2020, 1, 2), D(2020, 1, 3))
    assert again.sectors["QQQX"] == m.sectors["QQQX"]
    custom = generate_market(["AAPL"], D(2020, 1, 2), D(2020, 1, 3), sectors={"AAPL": "Energy"})
    assert custom.sectors == {"AAPL": "Energy"}
    assert not custom.bars.equals(m.bars.filter(pl.col("symbol") == "AAPL"))


def test_actions_lie_in_range_and_have_unique_ids(market: SyntheticMarket) -> None:
    actions = market.corporate_actions
    assert actions["ex_date"].min() >= START  # type: ignore[operator]
    assert actions["ex_date"].max() <= END  # type: ignore[operator]
    assert actions["id"].is_unique().all()
    kinds = set(actions["action_type"].to_list())
    assert {"cash_dividend", "forward_split"} <= kinds
    payers = actions.filter(pl.col("action_type") == "cash_dividend")["symbol"].n_unique()
    assert payers > len(market.symbols) / 2


def test_splits_show_raw_jumps_and_leave_adjusted_returns_continuous(
    market: SyntheticMarket,
) -> None:
    splits = market.corporate_actions.filter(pl.col("action_type").str.ends_with("split"))
    assert splits.height >= 5
    raw = with_returns(market.bars)
    adjusted = with_returns(adjust_bars(market.bars, market.corporate_actions, "split"))
    on_ex = splits.select("symbol", pl.col("ex_date").alias("date"), "old_rate", "new_rate")
    raw_ex = on_ex.join(raw, on=["symbol", "date"])
    adj_ex = on_ex.join(adjusted, on=["symbol", "date"])
    assert raw_ex.height == splits.height  # a split never goes ex on a session without a bar
    assert (raw_ex["r"].abs() > 0.25).all()
    assert (adj_ex["r"].abs() < 0.40).all()
    expected_jump = (pl.col("old_rate") / pl.col("new_rate")).log()
    assert (raw_ex["r"] - adj_ex["r"] - raw_ex.select(expected_jump).to_series()).abs().max() < 1e-9  # type: ignore[operator]


def test_dividends_drop_the_price_at_the_open(market: SyntheticMarket) -> None:
    dividends = market.corporate_actions.filter(pl.col("action_type") == "cash_dividend")
    raw = with_returns(market.bars).with_columns(prev=pl.col("close").shift(1).over("symbol"))
    adjusted = with_returns(adjust_bars(market.bars, market.corporate_actions, "all"))
    keys = dividends.select("symbol", pl.col("ex_date").alias("date"), "cash_rate")
    raw_ex = keys.join(raw, on=["symbol", "date"])
    adj_ex = keys.join(adjusted, on=["symbol", "date"])
    assert raw_ex.height == dividends.height
    assert (raw_ex["cash_rate"] >= 0.01).all()
    assert (raw_ex["cash_rate"] < 0.05 * raw_ex["prev"]).all()
    yield_ = (raw_ex["cash_rate"] / raw_ex["prev"]).mean()
    # The raw overnight gap shows the dividend; the adjusted one is centred like any gap.
    assert raw_ex["gap"].mean() < adj_ex["gap"].mean() - 0.8 * yield_  # type: ignore[operator]
    spread = adjusted["gap"].drop_nulls().std() / dividends.height**0.5  # type: ignore[operator]
    assert abs(adj_ex["gap"].mean() - adjusted["gap"].mean()) < 4 * spread  # type: ignore[operator]


def test_meta_was_fb_until_2022_06_09() -> None:
    m = generate_market(["META", "AAPL"], D(2022, 5, 2), D(2022, 7, 29))
    rename_day = D(2022, 6, 9)
    fb = m.bars.filter(pl.col("symbol") == "FB")
    meta = m.bars.filter(pl.col("symbol") == "META")
    assert fb.height > 20 and meta.height > 20
    assert fb["date"].max() < rename_day <= meta["date"].min()  # type: ignore[operator]
    assert meta["date"].min() == rename_day
    renames = m.corporate_actions.filter(pl.col("action_type") == "name_change")
    assert renames.select("symbol", "old_symbol", "ex_date").rows() == [("META", "FB", rename_day)]
    assert m.bars.equals(m.bars.sort("symbol", "date"))
    before = generate_market(["META"], D(2022, 5, 2), D(2022, 6, 8))
    assert set(before.bars["symbol"].to_list()) == {"FB"}
    assert before.corporate_actions.filter(pl.col("action_type") == "name_change").is_empty()
    assert before.bars.equals(fb.filter(pl.col("date") <= D(2022, 6, 8)))
    after = generate_market(["META"], D(2022, 7, 1), D(2022, 7, 29))
    assert after.bars.equals(meta.filter(pl.col("date") >= D(2022, 7, 1)))
    # The price path continues through the rename: no jump at the first META session.
    joined = with_returns(
        m.bars.with_columns(pl.col("symbol").replace("FB", "META")).filter(
            pl.col("symbol") == "META"
        )
    )
    assert joined.filter(pl.col("date") == rename_day)["r"].abs().item() < 0.2


def test_bad_requests_raise_config_errors() -> None:
    day = D(2020, 1, 2)
    with pytest.raises(ConfigError, match="empty"):
        generate_market([], day, day)
    with pytest.raises(ConfigError, match="upper case"):
        generate_market(["aapl"], day, day)
    with pytest.raises(ConfigError, match="duplicate"):
        generate_market(["AAPL", "AAPL"], day, day)
    with pytest.raises(ConfigError, match="old name"):
        generate_market(["FB", "META"], day, day)
    with pytest.raises(ConfigError, match="before the origin"):
        generate_market(["AAPL"], D(1999, 12, 31), day)
    with pytest.raises(ConfigError, match="after end"):
        generate_market(["AAPL"], day, D(2019, 12, 31))


def test_a_range_without_sessions_gives_empty_frames() -> None:
    m = generate_market(["AAPL"], D(2021, 1, 2), D(2021, 1, 3))  # a weekend
    assert m.bars.is_empty() and dict(m.bars.schema) == BARS_SCHEMA
    assert m.corporate_actions.is_empty() and m.halts.is_empty()


def test_mega_caps_trade_every_session():
    """The conformance reference names never miss a bar (a real mega-cap is not halted)."""
    core = ["AAPL", "MSFT", "JPM", "XOM", "JNJ"]
    start, end = dt.date(2022, 1, 1), dt.date(2023, 12, 31)
    market = generate_market(core, start, end)
    counts = dict(market.bars.group_by("symbol").len().iter_rows())
    assert counts == dict.fromkeys(core, len(sessions(start, end))) == dict.fromkeys(core, 501)
    assert market.halts.is_empty() and market.missing_bars.is_empty()
