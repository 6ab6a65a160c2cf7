"""Every price check flags exactly the planted defect, with the right symbol and dates."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from aurora import calendar
from aurora.config import ValidationConfig
from aurora.errors import ConfigError, DataValidationError
from aurora.validation import CHECKS, validate_prices

TODAY = dt.date(2024, 12, 31)
UNIVERSE = ["AAA", "BBB"]


def run(frame: pl.DataFrame, **kwargs):
    kwargs.setdefault("universe", UNIVERSE)
    kwargs.setdefault("today", TODAY)
    return validate_prices(frame, **kwargs)


def only(report, check: str):
    """The findings of `check`, asserting no other check found anything."""
    others = sorted({f.check for f in report.findings} - {check})
    assert others == [], [f.line() for f in report.findings]
    return [f for f in report.findings if f.check == check]


def day(frame: pl.DataFrame, symbol: str, i: int) -> dt.date:
    return frame.filter(pl.col("symbol") == symbol)["date"][i]


def set_value(frame: pl.DataFrame, symbol: str, when: dt.date, **values) -> pl.DataFrame:
    hit = (pl.col("symbol") == symbol) & (pl.col("date") == when)
    return frame.with_columns(
        [pl.when(hit).then(pl.lit(v, dtype=frame.schema[c])).otherwise(pl.col(c)).alias(c)
         for c, v in values.items()]
    )


def test_clean_frame_has_no_findings(clean):
    report = run(clean)
    assert report.findings == []
    assert report.ok
    assert report.stats["symbols"] == 2 and report.stats["rows"] == 40
    assert set(report.stats["checks"]) >= {"schema", "large_move", "missing_sessions"}


def test_unsorted_input_gives_same_answer(clean):
    assert run(clean.reverse()).findings == []


# -- schema -------------------------------------------------------------------------------
def test_missing_column_skips_other_checks(clean):
    report = run(clean.drop("volume"))
    [f] = only(report, "schema")
    assert f.severity == "error" and "volume" in f.message
    assert "large_move" in report.stats["skipped"]
    assert report.stats["unusable_columns"] == ["volume"]


def test_string_dates_are_a_schema_error(clean):
    report = run(clean.with_columns(pl.col("date").cast(pl.String)))
    [f] = only(report, "schema")
    assert "column date has dtype String" in f.message
    assert not report.ok


def test_castable_dtype_is_reported_but_checked(clean):
    frame = clean.with_columns(pl.col("volume").cast(pl.Int64))
    frame = set_value(frame, "AAA", day(frame, "AAA", 3), volume=-5)
    report = run(frame)
    assert {f.check for f in report.findings} == {"schema", "negative_volume"}
    [neg] = [f for f in report.findings if f.check == "negative_volume"]
    assert neg.symbol == "AAA" and neg.dates == (day(frame, "AAA", 3),)


def test_extra_columns_allowed_but_known_optional_dtypes_checked(clean):
    extra = clean.with_columns(vwap=pl.col("close"), trade_count=pl.lit(10, pl.Int64),
                               adj_close=pl.col("close"))
    assert run(extra).findings == []
    [f] = only(run(extra.with_columns(pl.col("trade_count").cast(pl.Float64))), "schema")
    assert "trade_count" in f.message


def test_nulls_listed_by_symbol_and_date(clean):
    when = day(clean, "BBB", 7)
    frame = set_value(clean, "BBB", when, close=None, volume=None)
    [f] = only(run(frame), "nulls")
    assert (f.symbol, f.dates, f.count) == ("BBB", (when,), 1)
    assert "close (1)" in f.message and "volume (1)" in f.message


def test_nan_and_inf(clean):
    d1, d2 = day(clean, "AAA", 2), day(clean, "AAA", 9)
    frame = set_value(set_value(clean, "AAA", d1, high=float("nan")), "AAA", d2,
                      close=float("inf"))
    [f] = only(run(frame), "non_finite")
    assert f.symbol == "AAA" and f.dates == (d1, d2)


# -- coverage, keys, calendar -------------------------------------------------------------
def test_coverage(clean, bars, zigzag):
    frame = pl.concat([clean.filter(pl.col("symbol") == "AAA"), bars("ZZZ", zigzag(20))])
    report = run(frame)
    assert {(f.check, f.symbol, f.severity) for f in report.findings} == {
        ("missing_symbols", "BBB", "error"), ("unexpected_symbols", "ZZZ", "warning")}


def test_duplicates(clean):
    row = clean.filter(pl.col("symbol") == "BBB").slice(4, 1)
    frame = pl.concat([clean, row, row])
    [f] = only(run(frame), "duplicates")
    assert (f.symbol, f.dates, f.count) == ("BBB", (row["date"][0],), 2)


@pytest.mark.parametrize("when", [dt.date(2024, 1, 6), dt.date(2024, 1, 15)],
                         ids=["saturday", "mlk-day"])
def test_non_session_dates(clean, when):
    row = clean.filter(pl.col("symbol") == "AAA").slice(2, 1).with_columns(
        date=pl.lit(when))
    [f] = only(run(pl.concat([clean, row])), "non_session_dates")
    assert (f.symbol, f.dates, f.severity) == ("AAA", (when,), "error")


def test_future_dates(clean):
    last = day(clean, "BBB", -1)
    report = run(clean, today=calendar.previous_session(last))
    assert {(f.check, f.symbol, f.dates) for f in report.findings} == {
        ("future_dates", "AAA", (last,)), ("future_dates", "BBB", (last,))}
    assert run(clean, today=last).findings == []


def test_isolated_missing_sessions_are_warnings(clean):
    gone = [day(clean, "AAA", 3), day(clean, "AAA", 10), day(clean, "AAA", 11)]
    report = run(clean.filter(~((pl.col("symbol") == "AAA") & pl.col("date").is_in(gone))))
    [f] = only(report, "missing_sessions")
    assert (f.symbol, f.dates, f.severity) == ("AAA", tuple(gone), "warning")
    assert report.ok


def test_four_consecutive_missing_is_not_a_long_gap(clean):
    gone = [day(clean, "BBB", i) for i in range(5, 9)]
    [f] = only(run(clean.filter(~pl.col("date").is_in(gone) | (pl.col("symbol") == "AAA"))),
               "missing_sessions")
    assert f.dates == tuple(gone)


def test_long_gap_is_an_error(clean):
    gone = [day(clean, "BBB", i) for i in range(5, 10)]
    report = run(clean.filter(~pl.col("date").is_in(gone) | (pl.col("symbol") == "AAA")))
    [f] = only(report, "long_gap")
    assert (f.symbol, f.dates, f.severity) == ("BBB", tuple(gone), "error")
    assert not report.ok
    # the threshold is configurable
    relaxed = run(clean.filter(~pl.col("date").is_in(gone) | (pl.col("symbol") == "AAA")),
                  config=ValidationConfig(long_gap_sessions=6))
    assert [f.check for f in relaxed.findings] == ["missing_sessions"]


def test_gaps_only_between_first_and_last_bar(clean):
    # a symbol listed later than the others is not missing sessions before its first bar
    frame = clean.filter((pl.col("symbol") == "AAA") | (pl.col("date") > day(clean, "BBB", 8)))
    assert run(frame).findings == []


# -- bar values ---------------------------------------------------------------------------
def test_non_positive_prices(clean):
    when = day(clean, "AAA", 5)
    frame = set_value(clean, "AAA", when, low=0.0)
    report = run(frame)
    [f] = only(report, "non_positive_prices")
    assert (f.symbol, f.dates) == ("AAA", (when,))


@pytest.mark.parametrize("make", [
    lambda o, c: {"high": min(o, c) * 0.9},  # high below open and close
    lambda o, c: {"low": max(o, c) * 1.1},  # low above open and close
    lambda o, c: {"open": c, "high": c * 0.999, "low": c * 1.001},  # high < low
], ids=["high", "low", "high<low"])
def test_ohlc_inconsistent(clean, make):
    when = day(clean, "BBB", 12)
    bar = clean.filter((pl.col("symbol") == "BBB") & (pl.col("date") == when))
    frame = set_value(clean, "BBB", when, **make(bar["open"][0], bar["close"][0]))
    [f] = only(run(frame), "ohlc_inconsistent")
    assert (f.symbol, f.dates, f.severity) == ("BBB", (when,), "error")


def test_negative_volume(clean):
    when = day(clean, "BBB", 0)
    [f] = only(run(set_value(clean, "BBB", when, volume=-1.0)), "negative_volume")
    assert (f.symbol, f.dates) == ("BBB", (when,))


def test_flat_bar(clean):
    prev, when = day(clean, "AAA", 6), day(clean, "AAA", 7)
    c = clean.filter((pl.col("symbol") == "AAA") & (pl.col("date") == prev))["close"][0]
    frame = set_value(clean, "AAA", when, open=c, high=c, low=c, close=c)
    [f] = only(run(frame), "flat_bar")
    assert (f.symbol, f.dates, f.severity) == ("AAA", (when,), "warning")


# -- stale --------------------------------------------------------------------------------
def test_stale_close_run(bars, zigzag, clean):
    closes = zigzag(20)
    closes[5:10] = [77.0] * 5
    frame = pl.concat([bars("AAA", closes), clean.filter(pl.col("symbol") == "BBB")])
    [f] = only(run(frame), "stale_close")
    expected = tuple(frame["date"][5:10])
    assert (f.symbol, f.dates, f.count) == ("AAA", expected, 5)
    closes[9] = 78.0  # a run of 4 is below the default threshold of 5
    frame4 = pl.concat([bars("AAA", closes), clean.filter(pl.col("symbol") == "BBB")])
    assert run(frame4).findings == []
    assert [f.count for f in run(frame4, config=ValidationConfig(stale_run_sessions=4))
            .findings] == [4]


def test_zero_volume_runs(clean):
    days = [day(clean, "BBB", i) for i in (3, 4, 5, 15)]
    frame = clean.with_columns(
        volume=pl.when((pl.col("symbol") == "BBB") & pl.col("date").is_in(days))
        .then(0.0).otherwise(pl.col("volume")))
    [f] = only(run(frame), "zero_volume")
    assert (f.symbol, f.dates, f.count) == ("BBB", tuple(days), 4)
    assert "longest run 3" in f.message


# -- large moves and corporate actions ----------------------------------------------------
def actions(*rows: dict) -> pl.DataFrame:
    base = {"id": "x", "action_type": None, "symbol": None, "old_symbol": None,
            "ex_date": None, "process_date": None, "old_rate": None, "new_rate": None,
            "cash_rate": None}
    return pl.DataFrame([{**base, **r} for r in rows], schema={
        "id": pl.String, "action_type": pl.String, "symbol": pl.String,
        "old_symbol": pl.String, "ex_date": pl.Date, "process_date": pl.Date,
        "old_rate": pl.Float64, "new_rate": pl.Float64, "cash_rate": pl.Float64})


def jump(bars, zigzag, clean, at: int, factor: float) -> pl.DataFrame:
    closes = zigzag(20)
    closes[at:] = [c * factor for c in closes[at:]]
    return pl.concat([bars("AAA", closes), clean.filter(pl.col("symbol") == "BBB")])


def test_unexplained_large_move(bars, zigzag, clean):
    frame = jump(bars, zigzag, clean, 9, 0.5)  # -51%: the walk itself falls 3% that day
    [f] = only(run(frame), "large_move")
    assert (f.symbol, f.dates, f.severity) == ("AAA", (frame["date"][9],), "error")
    assert "no corporate action" in f.message


def test_moves_within_threshold_pass(bars, zigzag, clean):
    assert run(jump(bars, zigzag, clean, 9, 0.6)).findings == []
    assert run(jump(bars, zigzag, clean, 9, 1.45)).findings == []


def test_forward_split_explains_the_move(bars, zigzag, clean):
    frame = jump(bars, zigzag, clean, 9, 0.5)
    ex = frame["date"][9]
    split = actions({"action_type": "forward_split", "symbol": "AAA", "ex_date": ex,
                     "old_rate": 1.0, "new_rate": 2.0})
    report = run(frame, corporate_actions=split)
    [f] = only(report, "explained_move")
    assert (f.symbol, f.dates, f.severity) == ("AAA", (ex,), "warning")
    assert report.ok
    # an action on another symbol or another day explains nothing
    other = actions({"action_type": "forward_split", "symbol": "BBB", "ex_date": ex,
                     "old_rate": 1.0, "new_rate": 2.0},
                    {"action_type": "forward_split", "symbol": "AAA",
                     "ex_date": frame["date"][11], "old_rate": 1.0, "new_rate": 2.0})
    assert [f.check for f in run(frame, corporate_actions=other).findings] == ["large_move"]


def test_reverse_split_explains_the_move(bars, zigzag, clean):
    frame = jump(bars, zigzag, clean, 9, 10.0)
    ex = frame["date"][9]
    rsplit = actions({"action_type": "reverse_split", "symbol": "AAA", "ex_date": ex,
                      "old_rate": 10.0, "new_rate": 1.0})
    [f] = only(run(frame, corporate_actions=rsplit), "explained_move")
    assert f.dates == (ex,)


def test_split_that_does_not_match_the_move_is_still_an_error(bars, zigzag, clean):
    frame = jump(bars, zigzag, clean, 9, 0.2)  # -80%, a 2-for-1 leaves -60%
    split = actions({"action_type": "forward_split", "symbol": "AAA",
                     "ex_date": frame["date"][9], "old_rate": 1.0, "new_rate": 2.0})
    [f] = only(run(frame, corporate_actions=split), "large_move")
    assert "not explained by forward_split" in f.message


def test_split_adjusted_prices_have_no_jump(bars, zigzag, clean):
    frame = jump(bars, zigzag, clean, 9, 1.0)
    split = actions({"action_type": "forward_split", "symbol": "AAA",
                     "ex_date": frame["date"][9], "old_rate": 1.0, "new_rate": 2.0})
    assert run(frame, corporate_actions=split).findings == []


def test_special_dividend_and_name_change_explain_moves(bars, zigzag, clean):
    frame = jump(bars, zigzag, clean, 9, 0.4)
    ex = frame["date"][9]
    prev_close = frame["close"][8]
    special = actions({"action_type": "cash_dividend", "symbol": "AAA", "ex_date": ex,
                       "cash_rate": prev_close * 0.6})
    assert [f.check for f in run(frame, corporate_actions=special).findings] == [
        "explained_move"]
    small = actions({"action_type": "cash_dividend", "symbol": "AAA", "ex_date": ex,
                     "cash_rate": 0.5})
    assert [f.check for f in run(frame, corporate_actions=small).findings] == ["large_move"]
    renamed = actions({"action_type": "name_change", "symbol": "AAA", "old_symbol": "OLD",
                       "ex_date": ex})
    [f] = only(run(frame, corporate_actions=renamed), "explained_move")
    assert "name_change from OLD" in f.message


def test_action_on_a_missing_session_still_matches(bars, zigzag, clean):
    frame = jump(bars, zigzag, clean, 9, 0.5)
    ex = frame["date"][9]
    frame = frame.filter((pl.col("date") != ex) | (pl.col("symbol") == "BBB"))  # bar missing
    split = actions({"action_type": "forward_split", "symbol": "AAA", "ex_date": ex,
                     "old_rate": 1.0, "new_rate": 2.0})
    checks = sorted(f.check for f in run(frame, corporate_actions=split).findings)
    assert checks == ["explained_move", "missing_sessions"]


def test_corporate_actions_without_required_columns(bars, zigzag, clean):
    frame = jump(bars, zigzag, clean, 9, 0.5)
    with pytest.raises(DataValidationError, match="ex_date"):
        run(frame, corporate_actions=actions({"action_type": "forward_split",
                                              "symbol": "AAA"}).drop("ex_date"))


# -- severities and the report ------------------------------------------------------------
def test_severity_override_makes_report_ok(bars, zigzag, clean):
    frame = jump(bars, zigzag, clean, 9, 0.5)
    assert not run(frame).ok
    relaxed = run(frame, config=ValidationConfig(severities={"large_move": "warning"}))
    assert relaxed.ok and [f.severity for f in relaxed.findings] == ["warning"]
    assert relaxed.stats["checks"]["large_move"] == "warning"
    ignored = run(frame, config=ValidationConfig(severities={"large_move": "ignore"}))
    assert ignored.findings == [] and ignored.stats["ignored"] == {"large_move": 1}
    stricter = run(clean.filter(pl.col("date") != day(clean, "AAA", 4)),
                   config=ValidationConfig(severities={"missing_sessions": "error"}))
    assert not stricter.ok


def test_unknown_severity_name_is_a_config_error(clean):
    with pytest.raises(ConfigError, match="large_moves"):
        run(clean, config=ValidationConfig(severities={"large_moves": "warning"}))


def test_every_check_has_a_default_severity():
    assert set(CHECKS.values()) == {"error", "warning"}


def test_report_keeps_every_date_but_short_messages(bars, clean):
    n = 60
    frame = pl.concat([bars("AAA", [10.0] * n), bars("BBB", [20.0 + i for i in range(n)])])
    report = run(frame, config=ValidationConfig(severities={"stale_close": "error"}))
    [f] = report.findings
    assert f.count == n and len(f.dates) == n
    assert len(f.message) < 120
    data = report.to_dict()
    json.dumps(data)  # JSON-able
    assert data["ok"] is False and data["errors"] == 1 and data["warnings"] == 0
    assert data["checks"]["stale_close"] == {"severity": "error", "findings": 1, "count": n}
    assert data["checks"]["large_move"] == {"severity": "error", "findings": 0, "count": 0}
    assert len(data["findings"][0]["dates"]) == n
    lines = report.summary_lines()
    assert lines[0].startswith("FAILED: 1 error(s), 0 warning(s)")
    assert any(line.startswith("stale_close") for line in lines)


def test_summary_lines_are_capped(clean):
    many = clean.filter(~pl.col("date").is_in([day(clean, "AAA", i) for i in (2, 4, 6)]))
    many = pl.concat([many] + [many.with_columns(symbol=pl.lit(f"X{i}")) for i in range(30)])
    report = run(many, config=ValidationConfig(severities={"unexpected_symbols": "error"}))
    lines = report.summary_lines(max_lines=3)
    assert len(lines) == 3 and lines[-1].startswith("...")
    assert report.summary_lines()[0].startswith("FAILED")


def test_sort_bars_orders_by_symbol_then_date_nulls_last(clean):
    from aurora.validation.checks import sort_bars

    frame = pl.concat([clean, clean.slice(3, 1).with_columns(symbol=pl.lit(None, pl.String)),
                       clean.slice(5, 1).with_columns(date=pl.lit(None, pl.Date))])
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=3)
    expected = frame.sort("symbol", "date", nulls_last=True)
    assert sort_bars(shuffled).equals(expected)
    assert sort_bars(expected).equals(expected)


def test_symbol_whose_bars_stop_early_is_stale(clean):
    aaa = clean.filter(pl.col("symbol") == "AAA")
    days = aaa["date"].to_list()
    short = clean.filter((pl.col("symbol") != "BBB") | (pl.col("date") <= days[-3]))
    [f] = only(run(short), "missing_sessions")
    assert (f.symbol, f.severity, f.dates) == ("BBB", "warning", tuple(days[-2:]))
    stopped = clean.filter((pl.col("symbol") != "BBB") | (pl.col("date") <= days[-8]))
    report = run(stopped)
    [f] = only(report, "stale_symbol")
    assert (f.symbol, f.severity, f.dates) == ("BBB", "error", tuple(days[-7:]))
    assert not report.ok


def test_a_non_numeric_price_column_is_a_schema_finding_not_nulls(clean):
    """A price column of strings names the column and its dtype as a `schema` error; no
    `nulls` (or any other) finding pretends its values were read."""
    report = run(clean.with_columns(pl.col("close").cast(pl.String)))
    [f] = only(report, "schema")
    assert f.message == "column close has dtype String, expected Float64 (not numeric)"
    assert not report.ok and "nulls" in report.stats["skipped"]


@pytest.mark.parametrize("column", ["vwap", "trade_count"])
def test_a_non_numeric_optional_column_is_reported_and_the_checks_still_run(clean, column):
    frame = clean.with_columns(pl.lit("n/a").alias(column))
    frame = set_value(frame, "AAA", day(frame, "AAA", 3), volume=-5.0)
    report = run(frame)
    assert sorted(f.check for f in report.findings) == ["negative_volume", "schema"]
    [schema] = [f for f in report.findings if f.check == "schema"]
    assert f"column {column} has dtype String" in schema.message
    assert "(not numeric)" in schema.message


def test_an_absurd_move_prints_bounded_numbers(bars, zigzag, clean):
    frame = jump(bars, zigzag, clean, 9, 1e300)
    [f] = [f for f in run(frame).findings if f.check == "large_move"]
    assert f.message.endswith(" -> 9.99e+301 (2024-01-16): +9.81e+301%, beyond +/-50%; "
                              "no corporate action explains it"), f.message
    assert len(f.message) < 120
