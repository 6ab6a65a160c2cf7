"""Time-series checks of a price frame: sessions, gaps, large moves, stale and flat bars.

Pure, vectorised functions over a frame with the contract dtypes, sorted by symbol then
date (`checks.sort_bars`); each returns `Finding`s with the check's default severity.
"Consecutive" means consecutive bars of one symbol. Session dates come from
`aurora.calendar` (NYSE, 1990 on); dates outside it count as non-session dates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from aurora import calendar
from aurora.adjustments import spin_off_values, unusable_actions
from aurora.errors import DataValidationError
from aurora.schemas import SPIN_OFF_TYPES, SPLIT_TYPES
from aurora.validation.checks import finding, per_symbol, valid_values
from aurora.validation.findings import Finding, format_dates, format_percent

ACTION_COLUMNS = ("action_type", "symbol", "ex_date")


def _same_symbol() -> pl.Expr:
    return pl.col("symbol") == pl.col("symbol").shift(1)


def _prev(column: str) -> pl.Expr:
    """The previous bar's value of `column` for the same symbol, else null."""
    return pl.when(_same_symbol()).then(pl.col(column).shift(1))


def check_calendar(frame: pl.DataFrame, today: dt.date) -> list[Finding]:
    """Bars dated on non-session days (weekends, holidays) and bars dated after `today`."""
    dates = frame["date"].drop_nulls()
    if dates.is_empty():
        return []
    sessions = pl.Series("s", calendar.sessions(dates.min(), dates.max()), dtype=pl.Date)
    rows = frame.filter(pl.col("date").is_not_null())
    on_session = rows["date"].is_in(sessions.implode())
    out = per_symbol(
        rows.filter(~on_session), "non_session_dates",
        lambda s, d, v: f"bar(s) on non-session day(s) {format_dates(d)}",
    )
    out += per_symbol(
        rows.filter(pl.col("date") > today), "future_dates",
        lambda s, d, v: f"bar(s) dated after {today}: {format_dates(d)}",
    )
    return out


def check_session_gaps(frame: pl.DataFrame, long_gap_sessions: int = 5) -> list[Finding]:
    """NYSE sessions without a bar between each symbol's first and last bar.

    A run of fewer than `long_gap_sessions` consecutive missing sessions is reported per
    symbol as `missing_sessions` (vendors legitimately omit halted days); a longer run is
    one `long_gap` finding per gap.
    """
    rows = frame.filter(pl.col("date").is_not_null() & pl.col("symbol").is_not_null())
    if rows.height == 0:
        return []
    cal = pl.Series("s", calendar.sessions(rows["date"].min(), rows["date"].max()),
                    dtype=pl.Date)
    if cal.is_empty():
        return []
    pos = cal.search_sorted(rows["date"], side="left")
    hit = cal.gather(pos.clip(0, cal.len() - 1)) == rows["date"]
    # Rows are sorted by symbol then date, so the previous session bar of the same symbol
    # is the previous row; duplicates (pos - prev == 0) and non-sessions are dropped first.
    gaps = (
        rows.select("symbol", pos=pos.cast(pl.Int64)).filter(hit)
        .with_columns(prev=_prev("pos"))
        .filter((pl.col("pos") - pl.col("prev")) > 1)
        .select("symbol", start=pl.col("prev") + 1, end=pl.col("pos"))
        .with_columns(length=pl.col("end") - pl.col("start"))
    )
    if gaps.height == 0:
        return []
    by_pos = pl.DataFrame({"_pos": pl.int_range(cal.len(), eager=True, dtype=pl.Int64),
                           "_date": cal})
    gaps = (
        gaps.with_row_index("gap").with_columns(_pos=pl.int_ranges("start", "end"))
        .explode("_pos").join(by_pos, on="_pos", how="left")
        .select("gap", "symbol", "length", missing="_date")
    )
    short = gaps.filter(pl.col("length") < long_gap_sessions)
    out = []
    for row in (short.group_by("symbol").agg(pl.col("missing").sort(),
                                             pl.col("length").max().alias("longest"))
                .sort("symbol").iter_rows(named=True)):
        dates = tuple(row["missing"])
        out.append(finding(
            "missing_sessions",
            f"{len(dates)} missing session(s) (longest run {row['longest']}): "
            f"{format_dates(dates)}",
            row["symbol"], dates,
        ))
    long = (gaps.filter(pl.col("length") >= long_gap_sessions)
            .group_by("gap", "symbol").agg(pl.col("missing").sort()))
    for row in long.sort("symbol", "gap").iter_rows(named=True):
        dates = tuple(row["missing"])
        out.append(finding(
            "long_gap",
            f"{len(dates)} consecutive sessions missing: {dates[0]}..{dates[-1]}",
            row["symbol"], dates,
        ))
    return out


def check_trailing_gaps(frame: pl.DataFrame, long_gap_sessions: int = 5,
                        ended: Mapping[str, dt.date] | None = None) -> list[Finding]:
    """Symbols whose bars stop before the panel's last session (the gap check above only sees
    sessions between a symbol's own first and last bar).

    Fewer than `long_gap_sessions` trailing sessions without a bar: `missing_sessions`
    (warning; a halt on the last days); that many or more: `stale_symbol` (error: the
    symbol's data stopped, and publishing it beside current symbols would hide that).
    `ended` maps symbols known to have stopped trading (renamed, delisted, acquired) to the
    last date they could have a bar: no session after it is expected of them, so their
    history ends cleanly (unless they have bars after it: a reused ticker).
    """
    rows = frame.filter(pl.col("date").is_not_null() & pl.col("symbol").is_not_null())
    if rows.height == 0:
        return []
    cal = pl.Series("s", calendar.sessions(rows["date"].min(), rows["date"].max()),
                    dtype=pl.Date)
    last = rows.group_by("symbol").agg(pl.col("date").max()).sort("symbol")
    ends = (last.join(pl.DataFrame({"symbol": list(ended or {}),
                                    "end": list((ended or {}).values())},
                                   schema={"symbol": pl.String, "end": pl.Date}),
                      on="symbol", how="left")["end"])
    # the sessions expected of each symbol: the whole calendar, or up to its end (an end
    # before the symbol's last bar is ignored: the ticker trades again, e.g. reused)
    open_ended = (ends.is_null() | (ends < last["date"])).to_numpy()
    expected = np.where(open_ended, cal.len(),
                        cal.search_sorted(ends.fill_null(cal[-1]), side="right").to_numpy())
    after = cal.search_sorted(last["date"], side="right").to_numpy()
    behind = expected - after
    out = []
    late = np.flatnonzero(behind > 0)
    for symbol, day, count, stop in zip(last["symbol"].gather(late),
                                        last["date"].gather(late), behind[late],
                                        expected[late], strict=True):
        missing = tuple(cal.slice(int(stop) - int(count), int(count)).to_list())
        check = "stale_symbol" if count >= long_gap_sessions else "missing_sessions"
        out.append(finding(check, f"no bar after {day}: the last {count} session(s) missing "
                                  f"({format_dates(missing)})", symbol, missing))
    return out


def ended_by_actions(actions: pl.DataFrame | None) -> dict[str, dt.date]:
    """Symbols renamed away (a name_change with them as old_symbol) -> the last date they
    could trade under that name: the day before the rename's ex_date."""
    needed = ("action_type", "old_symbol", "ex_date")
    if actions is None or actions.height == 0 or any(c not in actions.columns for c in needed):
        return {}  # a frame without the columns is reported by the large-move check
    renames = (actions.filter((pl.col("action_type") == "name_change")
                              & pl.col("old_symbol").is_not_null()
                              & pl.col("ex_date").is_not_null())
               .group_by("old_symbol").agg(pl.col("ex_date").max()))
    return {old: day - dt.timedelta(days=1) for old, day in renames.iter_rows()}


# -- large moves --------------------------------------------------------------------------
def _action_effects(actions: pl.DataFrame, closes: pl.DataFrame | None = None) -> pl.DataFrame:
    """Per (symbol, ex_date): split factor, dividend cash, renamed flag, spin-off flag and
    the value it distributed per parent share (`new_rate / old_rate` times the close of the
    company spun off on the ex_date, from `closes` (symbol, date, close); null and
    `spin_unknown` when that close is not known), a description."""
    missing = [c for c in ACTION_COLUMNS if c not in actions.columns]
    if missing:
        raise DataValidationError(
            f"corporate actions frame lacks column(s) {', '.join(missing)}"
        )
    a = actions
    for col in ("old_rate", "new_rate", "cash_rate"):
        if col not in a.columns:
            a = a.with_columns(pl.lit(None, dtype=pl.Float64).alias(col))
    a = a.with_columns(pl.col("target_symbol").cast(pl.String) if "target_symbol" in a.columns
                       else pl.lit(None, dtype=pl.String).alias("target_symbol"))
    values = spin_off_values(a, closes).unique(["symbol", "ex_date", "target_symbol"],
                                               keep="first")
    a = a.with_columns(pl.col("ex_date").cast(pl.Date)).join(
        values.rename({"value": "_spin_value"}), on=["symbol", "ex_date", "target_symbol"],
        how="left", nulls_equal=True)
    kind = pl.col("action_type")
    is_spin = kind.is_in(list(SPIN_OFF_TYPES))
    spin_value = pl.when(is_spin).then(pl.col("_spin_value"))
    is_split = kind.is_in(list(SPLIT_TYPES))
    factor = pl.when(is_split & (pl.col("old_rate") > 0) & (pl.col("new_rate") > 0)).then(
        pl.col("new_rate") / pl.col("old_rate")).otherwise(1.0)
    text = (
        pl.when(is_split).then(pl.format("{} {}:{}", kind, pl.col("old_rate"), pl.col("new_rate")))
        .when(kind == "cash_dividend").then(pl.format("cash_dividend {}", pl.col("cash_rate")))
        .when(kind == "name_change").then(pl.format("name_change from {}", pl.col("old_symbol")
                                                    if "old_symbol" in a.columns else pl.lit("?")))
        .when(is_spin).then(pl.format("spin_off of {} ({} per {})", pl.col("target_symbol"),
                                      pl.col("new_rate"), pl.col("old_rate")))
        .otherwise(kind)
    )
    return (
        a.filter(pl.col("symbol").is_not_null() & pl.col("ex_date").is_not_null())
        .with_columns(factor=factor, text=text, spin_value=spin_value)
        .group_by("symbol", "ex_date")
        .agg(
            pl.col("factor").product().alias("split_factor"),
            pl.when(kind == "cash_dividend").then(pl.col("cash_rate")).fill_null(0.0).sum()
            .alias("cash"),
            (kind == "name_change").any().alias("renamed"),
            is_spin.any().alias("spin_off"),
            pl.col("spin_value").fill_null(0.0).sum().alias("spin_value"),
            (is_spin & pl.col("spin_value").is_null()).any().alias("spin_unknown"),
            pl.col("text").str.join("; ").alias("actions"),
        )
    )


def check_actions(frame: pl.DataFrame, corporate_actions: pl.DataFrame | None
                  ) -> list[Finding]:
    """`bad_action`: a split, dividend or valued spin-off that cannot adjust the symbol's
    raw bars (`aurora.adjustments.unusable_actions`); the adjusted prices leave it out."""
    bad = unusable_actions(frame, corporate_actions)
    return [finding("bad_action", f"{r['action_type']} {r['id']} on {r['ex_date']}: "
                    f"{r['problem']}; left out of the adjusted prices", r["symbol"],
                    (r["ex_date"],))
            for r in bad.sort("symbol", "ex_date").iter_rows(named=True)]


def check_large_moves(
    frame: pl.DataFrame, corporate_actions: pl.DataFrame | None = None, max_move: float = 0.5
) -> list[Finding]:
    """Close-to-close moves with |close / previous close - 1| > max_move.

    A move is `explained_move` when a corporate action of the symbol has its ex_date after
    the previous bar and on or before the bar: a name change, or a split/dividend/spin-off
    after which the adjusted move |(close * new_rate/old_rate + cash + spun) / previous
    close - 1| is within `max_move` (`spun`: a spin-off's shares per parent share times the
    close of the company spun off on the ex_date, when `frame` holds it), or a drop on a
    spin-off whose distributed value is not known (the new company's bars are not in
    `frame`): a spin-off only ever takes value out of the parent. Otherwise it is
    `large_move`. Already split-adjusted prices show no jump at a split and raise nothing.
    """
    rows = frame.filter(valid_values() & (pl.col("close") > 0))
    moves = (
        rows.select("symbol", "date", "close", prev_close=_prev("close"), prev_date=_prev("date"))
        .with_columns(move=pl.col("close") / pl.col("prev_close") - 1)
        .filter(pl.col("move").abs() > max_move)
    )
    if moves.height == 0:
        return []
    if corporate_actions is not None and corporate_actions.height:
        effects = _action_effects(corporate_actions, rows.select("symbol", "date", "close"))
        matched = (
            moves.join(effects, on="symbol", how="inner")
            .filter(pl.col("ex_date") > pl.col("prev_date"), pl.col("ex_date") <= pl.col("date"))
            .group_by("symbol", "date")
            .agg(pl.col("split_factor").product(), pl.col("cash").sum(),
                 pl.col("renamed").any(), pl.col("spin_off").any(), pl.col("spin_value").sum(),
                 pl.col("spin_unknown").any(), pl.col("actions").str.join("; "))
        )
        moves = moves.join(matched, on=["symbol", "date"], how="left")
    else:
        moves = moves.with_columns(
            split_factor=pl.lit(None, pl.Float64), cash=pl.lit(None, pl.Float64),
            renamed=pl.lit(None, pl.Boolean), spin_off=pl.lit(None, pl.Boolean),
            spin_value=pl.lit(None, pl.Float64), spin_unknown=pl.lit(None, pl.Boolean),
            actions=pl.lit(None, pl.String),
        )
    moves = moves.with_columns(
        adjusted=(pl.col("close") * pl.col("split_factor") + pl.col("cash")
                  + pl.col("spin_value")) / pl.col("prev_close") - 1
    ).with_columns(
        explained=pl.col("renamed").fill_null(False)
        | (pl.col("adjusted").abs() <= max_move).fill_null(False)
        | (pl.col("spin_unknown").fill_null(False) & (pl.col("move") < 0))
    )
    out = []
    for r in moves.sort("symbol", "date").iter_rows(named=True):
        out.append(_move_finding(r, max_move))
    return out


def _move_finding(r: dict[str, Any], max_move: float) -> Finding:
    """The finding of one large move; every number is printed bounded (`format_percent`,
    `:g`), however absurd the prices."""
    head = (f"close {r['prev_close']:g} ({r['prev_date']}) -> {r['close']:g} ({r['date']}): "
            f"{format_percent(r['move'])}")
    if r["explained"]:
        after = ("" if r["adjusted"] is None
                 else f", {format_percent(r['adjusted'])} after adjusting")
        if r.get("spin_unknown"):
            after += " (the value of the spun-off shares is unknown: their bars are not here)"
        return finding("explained_move", f"{head} explained by {r['actions']}{after}",
                       r["symbol"], (r["date"],))
    why = (f"; not explained by {r['actions']} ({format_percent(r['adjusted'])} after "
           "adjusting)" if r["actions"] else "; no corporate action explains it")
    return finding("large_move", f"{head}, beyond +/-{max_move * 100:g}%{why}",
                   r["symbol"], (r["date"],))


# -- stale and flat bars ------------------------------------------------------------------
def _runs(flagged: pl.DataFrame) -> pl.DataFrame:
    """Group flagged rows (carrying `_row`, the row number in the sorted frame) into runs."""
    new_run = (pl.col("_row") != pl.col("_row").shift(1) + 1) | ~_same_symbol()
    return flagged.with_columns(_run=new_run.fill_null(True).cum_sum())


def check_stale_closes(frame: pl.DataFrame, min_run: int = 5) -> list[Finding]:
    """The same close on >= `min_run` consecutive bars of a symbol: one finding per run."""
    rows = frame.with_row_index("_row").filter(valid_values())
    repeat = _same_symbol() & (pl.col("close") == pl.col("close").shift(1)) & (
        pl.col("_row") == pl.col("_row").shift(1) + 1)
    rows = rows.with_columns(_rep=repeat.fill_null(False))
    # A run of k equal closes is a starting row plus k - 1 repeats.
    part = rows.filter(pl.col("_rep") | pl.col("_rep").shift(-1).fill_null(False))
    if part.height == 0:
        return []
    runs = (
        part.with_columns(_run=(~pl.col("_rep")).cum_sum())
        .group_by("_run")
        .agg(pl.col("symbol").first(), pl.col("close").first(), pl.col("date").sort(),
             pl.len().alias("n"))
        .filter(pl.col("n") >= min_run)
        .sort("symbol", "_run")
    )
    return [
        finding("stale_close",
                f"close {r['close']:g} repeated on {r['n']} consecutive bars "
                f"{r['date'][0]}..{r['date'][-1]}", r["symbol"], tuple(r["date"]))
        for r in runs.iter_rows(named=True)
    ]


def check_zero_volume(frame: pl.DataFrame) -> list[Finding]:
    """Bars with volume == 0, one finding per symbol with the longest consecutive run."""
    flagged = frame.with_row_index("_row").filter(pl.col("volume") == 0)
    if flagged.height == 0:
        return []
    runs = _runs(flagged).with_columns(_len=pl.len().over("_run"))

    def describe(symbol: str | None, dates: tuple[dt.date, ...], v: dict[str, Any]) -> str:
        return (f"{len(dates)} bar(s) with zero volume (longest run {v['longest']}): "
                f"{format_dates(dates)}")

    return per_symbol(runs, "zero_volume", describe, longest=pl.col("_len").max())


def check_flat_bars(frame: pl.DataFrame) -> list[Finding]:
    """Bars with open == high == low == close == previous close and volume > 0.

    The signature of a bar a vendor filled forward from the previous close while reporting
    real volume; a real trading day of a listed stock essentially never looks like this.
    """
    rows = frame.filter(valid_values())
    flat = (
        (pl.col("open") == pl.col("high")) & (pl.col("high") == pl.col("low"))
        & (pl.col("low") == pl.col("close")) & (pl.col("close") == _prev("close"))
        & (pl.col("volume") > 0)
    )
    flagged = rows.filter(flat.fill_null(False))
    return per_symbol(
        flagged, "flat_bar",
        lambda s, d, v: f"bar(s) with open=high=low=close=previous close and volume > 0 "
                        f"on {format_dates(d)}",
    )
