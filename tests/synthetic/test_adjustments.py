"""adjust_bars / adjustment_factors: hand-built frames with known answers, plus properties."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aurora.adjustments import (
    adjust_bars,
    adjustment_factors,
    apply_point_in_time,
    cumulate,
    point_in_time,
    point_in_time_events,
)
from aurora.errors import ConfigError, DataValidationError

D = dt.date
ACTION_SCHEMA = {
    "id": pl.String,
    "action_type": pl.String,
    "symbol": pl.String,
    "old_symbol": pl.String,
    "ex_date": pl.Date,
    "process_date": pl.Date,
    "old_rate": pl.Float64,
    "new_rate": pl.Float64,
    "cash_rate": pl.Float64,
}


def bars_frame(rows: list[tuple[str, dt.date, float, int]]) -> pl.DataFrame:
    """Bars with open=high=low=vwap=close for simplicity; volume Int64 as a vendor sends it."""
    return pl.DataFrame(
        {
            "date": [r[1] for r in rows],
            "symbol": [r[0] for r in rows],
            "open": [r[2] for r in rows],
            "high": [r[2] * 1.01 for r in rows],
            "low": [r[2] * 0.99 for r in rows],
            "close": [r[2] for r in rows],
            "volume": [r[3] for r in rows],
            "vwap": [r[2] for r in rows],
            "trade_count": [7 for _ in rows],
        },
        schema_overrides={"volume": pl.Int64, "trade_count": pl.Int64},
    )


def split(symbol: str, ex: dt.date, old: float, new: float, ident: str = "s1") -> dict:
    kind = "forward_split" if new > old else "reverse_split"
    return {
        "id": ident,
        "action_type": kind,
        "symbol": symbol,
        "ex_date": ex,
        "process_date": ex,
        "old_rate": old,
        "new_rate": new,
    }


def dividend(symbol: str, ex: dt.date, cash: float, ident: str = "d1") -> dict:
    return {
        "id": ident,
        "action_type": "cash_dividend",
        "symbol": symbol,
        "ex_date": ex,
        "process_date": ex,
        "cash_rate": cash,
    }


def actions_frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=ACTION_SCHEMA)


THREE_DAYS = [
    ("AAA", D(2024, 1, 2), 100.0, 1000),
    ("AAA", D(2024, 1, 3), 100.0, 1000),
    ("AAA", D(2024, 1, 4), 50.0, 2000),
]


def test_two_for_one_split_halves_earlier_prices_and_doubles_volume() -> None:
    out = adjust_bars(
        bars_frame(THREE_DAYS), actions_frame([split("AAA", D(2024, 1, 4), 1, 2)]), "split"
    )
    assert out["close"].to_list() == [50.0, 50.0, 50.0]
    assert out["high"].to_list() == pytest.approx([50.5, 50.5, 50.5])
    assert out["vwap"].to_list() == [50.0, 50.0, 50.0]
    assert out["volume"].to_list() == [2000.0, 2000.0, 2000.0]
    assert out["volume"].dtype == pl.Float64
    assert out["trade_count"].to_list() == [7, 7, 7]


def test_reverse_split_multiplies_earlier_prices() -> None:
    bars = bars_frame([("AAA", D(2024, 1, 2), 1.0, 5000), ("AAA", D(2024, 1, 3), 10.0, 500)])
    out = adjust_bars(bars, actions_frame([split("AAA", D(2024, 1, 3), 10, 1)]), "all")
    assert out["close"].to_list() == [10.0, 10.0]
    assert out["volume"].to_list() == [500.0, 500.0]


def test_dividend_scales_earlier_prices_by_one_minus_yield() -> None:
    actions = actions_frame([dividend("AAA", D(2024, 1, 4), 1.0)])
    out = adjust_bars(bars_frame(THREE_DAYS), actions, "dividend")
    assert out["close"].to_list() == pytest.approx([99.0, 99.0, 50.0])
    assert out["volume"].to_list() == [1000.0, 1000.0, 2000.0]


def test_dividend_uses_last_raw_close_when_prior_session_is_missing() -> None:
    bars = bars_frame([("AAA", D(2024, 1, 2), 80.0, 10), ("AAA", D(2024, 1, 5), 79.0, 10)])
    out = adjust_bars(bars, actions_frame([dividend("AAA", D(2024, 1, 4), 2.0)]), "all")
    assert out["close"].to_list() == pytest.approx([78.0, 79.0])


def test_dividend_ratio_uses_raw_close_even_with_a_later_split() -> None:
    actions = actions_frame(
        [
            dividend("AAA", D(2024, 1, 3), 1.0),  # prior raw close 100 -> factor 0.99
            split("AAA", D(2024, 1, 4), 1, 2),
        ]
    )
    out = adjust_bars(bars_frame(THREE_DAYS), actions, "all")
    assert out["close"].to_list() == pytest.approx([100 * 0.99 * 0.5, 50.0, 50.0])
    split_only = adjust_bars(bars_frame(THREE_DAYS), actions, "split")
    div_only = adjust_bars(bars_frame(THREE_DAYS), actions, "dividend")
    assert out["close"].to_list() == pytest.approx(
        (split_only["close"] * div_only["close"] / bars_frame(THREE_DAYS)["close"]).to_list()
    )


def test_as_of_before_ex_date_leaves_data_unchanged() -> None:
    bars = bars_frame(THREE_DAYS)
    actions = actions_frame([split("AAA", D(2024, 1, 4), 1, 2), dividend("AAA", D(2024, 1, 4), 1)])
    out = adjust_bars(bars, actions, "all", as_of=D(2024, 1, 3))
    assert out.equals(bars.with_columns(pl.col("volume").cast(pl.Float64)))
    applied = adjust_bars(bars, actions, "all", as_of=D(2024, 1, 4))
    assert applied["close"].to_list() == pytest.approx([49.5, 49.5, 50.0])


def test_raw_mode_and_name_change_are_no_ops() -> None:
    bars = bars_frame(THREE_DAYS)
    rename = {
        "id": "n1",
        "action_type": "name_change",
        "symbol": "AAA",
        "old_symbol": "OLD",
        "ex_date": D(2024, 1, 3),
        "process_date": D(2024, 1, 3),
    }
    actions = actions_frame([rename, split("AAA", D(2024, 1, 4), 1, 2)])
    assert adjust_bars(bars, actions, "raw")["close"].to_list() == [100.0, 100.0, 50.0]
    assert adjust_bars(bars, actions_frame([rename]), "all")["close"].to_list() == [
        100.0,
        100.0,
        50.0,
    ]


def test_rows_order_and_other_symbols_are_preserved() -> None:
    rows = [
        ("BBB", D(2024, 1, 3), 20.0, 5),
        ("AAA", D(2024, 1, 4), 50.0, 2000),
        ("BBB", D(2024, 1, 2), 20.0, 5),
        ("AAA", D(2024, 1, 2), 100.0, 1000),
    ]
    out = adjust_bars(bars_frame(rows), actions_frame([split("AAA", D(2024, 1, 4), 1, 2)]), "all")
    assert out["symbol"].to_list() == ["BBB", "AAA", "BBB", "AAA"]
    assert out["close"].to_list() == [20.0, 50.0, 20.0, 50.0]
    assert out["volume"].to_list() == [5.0, 2000.0, 5.0, 2000.0]


def test_same_day_actions_compose_and_factors_table() -> None:
    actions = actions_frame(
        [split("AAA", D(2024, 1, 4), 1, 2, "a"), split("AAA", D(2024, 1, 4), 1, 3, "b")]
    )
    factors = adjustment_factors(bars_frame(THREE_DAYS), actions, "split")
    assert factors.columns == ["symbol", "date", "price_factor", "volume_factor"]
    assert factors["price_factor"].to_list() == pytest.approx([1 / 6, 1 / 6, 1.0])
    assert factors["volume_factor"].to_list() == pytest.approx([6.0, 6.0, 1.0])


def test_empty_actions_and_empty_bars() -> None:
    bars = bars_frame(THREE_DAYS)
    assert adjust_bars(bars, pl.DataFrame(), "all")["close"].to_list() == [100.0, 100.0, 50.0]
    empty = bars.head(0)
    assert adjust_bars(empty, actions_frame([split("AAA", D(2024, 1, 4), 1, 2)]), "all").height == 0


def test_bad_inputs_raise_one_line_errors() -> None:
    bars = bars_frame(THREE_DAYS)
    with pytest.raises(ConfigError, match="unknown adjustment mode"):
        adjust_bars(bars, actions_frame([]), "weird")  # type: ignore[arg-type]
    with pytest.raises(DataValidationError, match=r"'s1'.*AAA.*positive old_rate"):
        adjust_bars(bars, actions_frame([split("AAA", D(2024, 1, 4), 0, 2)]), "split")
    with pytest.raises(DataValidationError, match=r"'d1'.*prior raw close"):
        adjust_bars(bars, actions_frame([dividend("AAA", D(2024, 1, 4), 150.0)]), "all")
    with pytest.raises(DataValidationError, match="missing column"):
        adjust_bars(bars.drop("close"), actions_frame([]), "all")


@st.composite
def split_history(draw):
    n = draw(st.integers(min_value=3, max_value=40))
    steps = draw(st.lists(st.floats(-0.2, 0.2), min_size=n - 1, max_size=n - 1))
    ratios = st.sampled_from([(1.0, 2.0), (1.0, 3.0), (2.0, 3.0), (10.0, 1.0), (1.0, 4.0)])
    events = draw(st.dictionaries(st.integers(1, n - 1), ratios, max_size=4))
    return steps, events


@settings(max_examples=60, deadline=None)
@given(split_history())
def test_split_adjusted_returns_are_continuous(history) -> None:
    steps, events = history
    days = [D(2020, 1, 1) + dt.timedelta(days=i) for i in range(len(steps) + 1)]
    raw = [100.0]
    for i, step in enumerate(steps, start=1):
        old, new = events.get(i, (1.0, 1.0))
        raw.append(raw[-1] * (1 + step) * old / new)
    bars = bars_frame([("AAA", day, price, 1000) for day, price in zip(days, raw, strict=True)])
    actions = actions_frame(
        [split("AAA", days[i], old, new, f"s{i}") for i, (old, new) in events.items()]
    )
    adjusted = adjust_bars(bars, actions, "split")["close"].to_list()
    for i, step in enumerate(steps, start=1):
        assert adjusted[i] / adjusted[i - 1] - 1 == pytest.approx(step, abs=1e-9)
        old, new = events.get(i, (1.0, 1.0))
        assert raw[i] / raw[i - 1] == pytest.approx((1 + step) * old / new, rel=1e-9)
    assert adjusted[-1] == pytest.approx(raw[-1])


def test_dividend_before_the_first_bar_changes_nothing() -> None:
    actions = actions_frame([dividend("AAA", D(2024, 1, 2), 1.0)])
    out = adjust_bars(bars_frame(THREE_DAYS), actions, "all")
    assert out["close"].to_list() == [100.0, 100.0, 50.0]


def reference_factors(rows, actions, as_of):
    """Naive per-row loop over the Alpaca rules, for comparison with the vectorised code."""
    price, volume = [], []
    for symbol, day, _, _ in rows:
        p = v = 1.0
        for a in actions:
            if a["symbol"] != symbol or a["ex_date"] <= day:
                continue
            if as_of is not None and a["ex_date"] > as_of:
                continue
            if a["action_type"] == "cash_dividend":
                before = [r for r in rows if r[0] == symbol and r[1] < a["ex_date"]]
                if before:
                    p *= 1 - a["cash_rate"] / max(before, key=lambda r: r[1])[2]
            else:
                p *= a["old_rate"] / a["new_rate"]
                v *= a["new_rate"] / a["old_rate"]
        price.append(p)
        volume.append(v)
    return price, volume


@st.composite
def books(draw):
    days = [D(2024, 1, 1) + dt.timedelta(days=i) for i in range(12)]
    rows = []
    for symbol in ("AAA", "BBB"):
        present = draw(st.lists(st.sampled_from(days), unique=True, max_size=12))
        rows += [(symbol, d, draw(st.floats(5, 500)), 1000) for d in present]
    rows = draw(st.permutations(rows))
    actions = []
    for i in range(draw(st.integers(0, 6))):
        symbol = draw(st.sampled_from(["AAA", "BBB", "CCC"]))
        ex = draw(st.sampled_from(days))
        if draw(st.booleans()):
            old, new = draw(st.sampled_from([(1.0, 2.0), (1.0, 3.0), (10.0, 1.0)]))
            actions.append(split(symbol, ex, old, new, f"s{i}"))
        else:
            actions.append(dividend(symbol, ex, draw(st.floats(0, 4.9)), f"d{i}"))
    as_of = draw(st.none() | st.sampled_from(days))
    return rows, actions, as_of


@settings(max_examples=80, deadline=None)
@given(books())
def test_vectorised_factors_match_the_naive_rules(book) -> None:
    rows, actions, as_of = book
    factors = adjustment_factors(bars_frame(rows), actions_frame(actions), "all", as_of)
    price, volume = reference_factors(rows, actions, as_of)
    assert factors["price_factor"].to_list() == pytest.approx(price, rel=1e-12)
    assert factors["volume_factor"].to_list() == pytest.approx(volume, rel=1e-12)
    assert factors["symbol"].to_list() == [r[0] for r in rows]


@settings(max_examples=60, deadline=None)
@given(books())
def test_point_in_time_equals_its_two_step_form(book) -> None:
    """One bar index serves both the events and their application: the same cells as
    `apply_point_in_time(bars, cumulate(point_in_time_events(bars, actions)))`."""
    rows, actions, _ = book
    bars = bars_frame(rows)
    book_actions = actions_frame(actions)
    once = point_in_time(bars, book_actions)
    two_steps = apply_point_in_time(bars, cumulate(point_in_time_events(bars, book_actions)))
    assert once.equals(two_steps)
    assert once.select("symbol", "date").equals(bars.select("symbol", "date"))


def _spin_off(parent: str, child: str, ex: dt.date, old: float, new: float) -> pl.DataFrame:
    schema = {**ACTION_SCHEMA, "target_symbol": pl.String}
    return pl.DataFrame([{"id": "sp1", "action_type": "spin_off", "symbol": parent,
                          "ex_date": ex, "process_date": ex, "old_rate": old, "new_rate": new,
                          "target_symbol": child}], schema=schema)


def test_a_valued_spin_off_adjusts_the_parent_like_a_dividend_of_its_value() -> None:
    """Parent 100 -> 80 on the ex-date, 1 child share per 2 parent shares, child closes at
    40 on the ex-date: 20 per parent share was distributed, so the parent's total return
    on the ex-date is 80 / (100 - 20) - 1 = 0 (a dividend of 20)."""
    from aurora.adjustments import point_in_time, spin_off_values

    bars = bars_frame([("PAR", D(2024, 1, 2), 100.0, 1000), ("PAR", D(2024, 1, 3), 80.0, 1000),
                       ("PAR", D(2024, 1, 4), 88.0, 1000), ("KID", D(2024, 1, 3), 40.0, 500),
                       ("KID", D(2024, 1, 4), 42.0, 500)])
    actions = _spin_off("PAR", "KID", D(2024, 1, 3), 2.0, 1.0)
    values = spin_off_values(actions, bars)
    assert values["value"].to_list() == [20.0]
    adjusted = point_in_time(bars, actions).filter(pl.col("symbol") == "PAR")["close"]
    returns = (adjusted / adjusted.shift(1) - 1).to_list()[1:]
    assert returns == pytest.approx([0.0, 0.1], abs=1e-15)
    # the child's own bars are untouched
    kid = point_in_time(bars, actions).filter(pl.col("symbol") == "KID")["close"].to_list()
    assert kid == [40.0, 42.0]


def test_a_spin_off_of_a_company_not_in_the_store_adjusts_nothing() -> None:
    from aurora.adjustments import point_in_time, spin_off_values

    bars = bars_frame([("PAR", D(2024, 1, 2), 100.0, 1000), ("PAR", D(2024, 1, 3), 80.0, 1000)])
    actions = _spin_off("PAR", "KID", D(2024, 1, 3), 2.0, 1.0)
    assert spin_off_values(actions, bars)["value"].to_list() == [None]
    assert point_in_time(bars, actions)["close"].to_list() == [100.0, 80.0]


def test_a_dividend_not_below_the_prior_close_is_left_out_and_reported() -> None:
    """A vendor slip (a 150 dividend on a 100 stock) cannot adjust anything: point_in_time
    leaves it out instead of stopping every symbol's build, and validation names it."""
    from aurora.adjustments import point_in_time, unusable_actions
    from aurora.validation import validate_prices

    bars = bars_frame([("AAA", D(2024, 1, 2), 100.0, 1000), ("AAA", D(2024, 1, 3), 99.0, 1000),
                       ("BBB", D(2024, 1, 2), 50.0, 1000), ("BBB", D(2024, 1, 3), 49.0, 1000)])
    actions = actions_frame([dividend("AAA", D(2024, 1, 3), 150.0, "bad"),
                             dividend("BBB", D(2024, 1, 3), 1.0, "ok")])
    [row] = unusable_actions(bars, actions).iter_rows(named=True)
    assert (row["id"], row["symbol"]) == ("bad", "AAA")
    assert "150.0 per share is not below the last raw close before the ex-date (100.0)" \
        in row["problem"]
    adjusted = point_in_time(bars, actions)
    assert adjusted.filter(pl.col("symbol") == "AAA")["close"].to_list() == [100.0, 99.0]
    bbb = adjusted.filter(pl.col("symbol") == "BBB")["close"].to_list()
    assert bbb[1] / bbb[0] == pytest.approx(49.0 / 49.0)  # 50 - 1 paid out: no loss
    report = validate_prices(bars, universe=["AAA", "BBB"], corporate_actions=actions,
                             today=D(2024, 1, 4))
    [bad] = [f for f in report.findings if f.check == "bad_action"]
    assert bad.severity == "error" and bad.symbol == "AAA" and bad.dates == (D(2024, 1, 3),)
    assert bad.message.startswith("cash_dividend bad on 2024-01-03: 150.0 per share")
