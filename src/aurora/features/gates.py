"""Quality gates of the build: the seed's checks, made sound.

`run_gates` checks a computed feature frame (or the `FrameSummary` of one built in parts,
`aurora.features.gatestats`): exactly the 45 registry features; consistent
types and unique (date, symbol) keys; every universe symbol present; every expected session
present; no feature flat across the cross-section (a scale-free test); at most
`max_missing_fraction` missing per feature. `check_lookahead` is the real point-in-time test:
it perturbs every bar after a date T, recomputes, and requires every feature at or before T
to be unchanged.

A gate never raises on bad data: it returns a `GateResult` that names the feature and dates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl

from aurora.calendar import is_session, previous_session, sessions
from aurora.features.gatestats import FrameSummary, summarize
from aurora.features.registry import FEATURE_NAMES, MAX_LOOKBACK
from aurora.membership import Membership

MAX_LISTED = 10
LOOKAHEAD_RTOL = 1e-12
FLAT_DATES_ALLOWED = 0.05


@dataclass
class GateResult:
    name: str
    passed: bool
    message: str
    feature: str | None = None
    dates: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class GateReport:
    results: list[GateResult]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[GateResult]:
        return [r for r in self.results if not r.passed]

    def summary(self) -> str:
        """One line: the first failure (gate, feature, dates) and how many others failed."""
        fails = self.failures
        if not fails:
            return f"all {len(self.results)} gates passed"
        first = fails[0]
        more = f"; {len(fails) - 1} more gate failure(s)" if len(fails) > 1 else ""
        return f"gate {first.name} failed: {first.message}{more}"

    def to_json(self) -> dict[str, Any]:
        return {"passed": self.passed, "gates": [asdict(r) for r in self.results]}


def _listed(values: Sequence[Any]) -> str:
    shown = ", ".join(str(v) for v in values[:MAX_LISTED])
    return shown + (f" (+{len(values) - MAX_LISTED} more)" if len(values) > MAX_LISTED else "")


Judged = pl.DataFrame | FrameSummary


def _summary(frame: Judged) -> FrameSummary:
    return frame if isinstance(frame, FrameSummary) else summarize(frame)


def gate_feature_count(frame: Judged, names: Sequence[str] = FEATURE_NAMES) -> GateResult:
    """Exactly the features `names` (the registry's, plus the user's), no other f_ column."""
    cols = [c for c in frame.columns if c.startswith("f_")]
    missing = [n for n in names if n not in cols]
    extra = [c for c in cols if c not in names]
    ok = len(cols) == len(names) and not missing and not extra
    msg = (f"{len(cols)} features" if ok else
           f"expected {len(names)} features, found {len(cols)}; missing: "
           f"{_listed(missing) or 'none'}; unexpected: {_listed(extra) or 'none'}")
    return GateResult("feature_count", ok, msg, details={"count": len(cols)})


def gate_types(frame: Judged) -> GateResult:
    summary = _summary(frame)
    schema = summary.schema
    problems = []
    if schema.get("date") != pl.Date:
        problems.append(f"date is {schema.get('date')}, expected Date")
    if schema.get("symbol") != pl.String:
        problems.append(f"symbol is {schema.get('symbol')}, expected String")
    bad = [c for c in summary.features if schema[c] != pl.Float64]
    problems += [f"{c} is {schema[c]}, expected Float64" for c in bad]
    if not problems and summary.duplicates:
        problems.append(summary.duplicates)
    return GateResult("types", not problems, "; ".join(problems) or "types consistent",
                      feature=bad[0] if bad else None)


def gate_symbols(frame: Judged, universe: Sequence[str],
                 last_bar: pl.DataFrame | None = None,
                 membership: Membership | None = None,
                 excused: Mapping[str, str] | None = None,
                 warmup: int = MAX_LOOKBACK) -> GateResult:
    """Every universe symbol has feature rows (with `membership`: every symbol that is a
    member on some date of the frame's range), except, named in `details["not_ranked"]`:
    a symbol with fewer sessions of history than the warm-up (MAX_LOOKBACK + 1 sessions
    for a first row: a new listing is ranked once its look-backs are full), and the
    symbols of `excused` (symbol -> why: quarantined, delisted at the server). It fails
    for a symbol without bars, or with a full warm-up and still no row. `last_bar`
    (symbol, first_date, last_date of its bars) tells which is which; without it every
    symbol without rows fails."""
    summary = _summary(frame)
    present = set(summary.by_symbol["symbol"].to_list())
    if membership is not None and summary.height:
        lo, hi = summary.nulls_by_date["date"].min(), summary.nulls_by_date["date"].max()
        assert isinstance(lo, dt.date) and isinstance(hi, dt.date)
        universe = sorted(set(universe) & set(membership.ever_between(lo, hi)))
    missing = sorted(set(universe) - present)
    spans = {}
    if last_bar is not None and "first_date" in last_bar.columns:
        spans = {r["symbol"]: (r["first_date"], r["last_date"])
                 for r in last_bar.filter(pl.col("symbol").is_in(missing)).iter_rows(named=True)}
    not_ranked: dict[str, str] = {}
    failing: dict[str, str] = {}
    for sym in missing:
        if excused and sym in excused:
            not_ranked[sym] = f"{sym} ({excused[sym]})"
        elif sym not in spans:
            failing[sym] = f"{sym} (no bars)"
        else:
            first, last = spans[sym]
            n = len(sessions(first, last))
            why = f"{sym} ({n} sessions of history from {first}, the warm-up needs " \
                  f"{warmup + 1})"
            (not_ranked if n < warmup + 1 else failing)[sym] = why
    details: dict[str, Any] = {"missing": sorted(failing), "not_ranked": not_ranked}
    if failing:
        msg = (f"{len(failing)} universe symbol(s) have no feature rows: "
               f"{_listed(list(failing.values()))}")
        return GateResult("symbol_coverage", False, msg, details=details)
    msg = f"all {len(universe)} universe symbols present"
    if not_ranked:
        msg = (f"{len(universe) - len(not_ranked)} of {len(universe)} universe symbols "
               f"present; not ranked yet: {_listed(list(not_ranked.values()))}")
    return GateResult("symbol_coverage", True, msg, details=details)


def gate_sessions(frame: Judged, last_bar: pl.DataFrame | None = None,
                  membership: Membership | None = None) -> GateResult:
    """Every session between the first and last date is present, with no hole per symbol;
    with `last_bar` (symbol, last_date), each symbol also reaches its last bar. With
    `membership`, a symbol's sessions are expected only on its member dates: no hole among
    them, and it reaches its last bar or the end of its last membership before it."""
    summary = _summary(frame)
    if summary.height == 0:
        return GateResult("session_coverage", False, "no feature rows at all")
    lo, hi = summary.nulls_by_date["date"].min(), summary.nulls_by_date["date"].max()
    assert isinstance(lo, dt.date) and isinstance(hi, dt.date)
    cal = sessions(lo, hi)
    present = set(summary.nulls_by_date["date"].to_list())
    absent = sorted(set(cal) - present)
    problems, dates = [], [str(d) for d in absent]
    if absent:
        problems.append(f"{len(absent)} session(s) have no rows: {_listed(dates)}")
    off = sorted(present - set(cal))
    if off:
        problems.append(f"{len(off)} date(s) with rows are not sessions: "
                        f"{_listed([str(d) for d in off])}")
    cal_idx = pl.DataFrame({"date": cal}, schema={"date": pl.Date}).with_row_index("i")
    spans = (summary.by_symbol
             .join(cal_idx.rename({"date": "first", "i": "lo"}), on="first")
             .join(cal_idx.rename({"date": "last", "i": "hi"}), on="last")
             .select("symbol", pl.col("rows").alias("n"), "lo", "hi",
                     pl.col("last").alias("date")))
    expected = pl.col("hi") - pl.col("lo") + 1
    if membership is not None:
        grid = (spans.select("symbol", pl.int_ranges("lo", pl.col("hi") + 1).alias("i"))
                .explode("i").join(cal_idx, on="i"))
        members = (grid.filter(membership.is_member(grid)).group_by("symbol")
                   .agg(pl.len().alias("expected")))
        spans = spans.join(members, on="symbol", how="left")
        expected = pl.col("expected")
    holes = spans.filter(pl.col("n") != expected).sort("symbol")
    if holes.height:
        problems.append(f"{holes.height} symbol(s) miss sessions inside their span: "
                        f"{_listed(holes['symbol'].to_list())}")
    if last_bar is not None:
        ends = last_bar if membership is None else member_ends(last_bar, membership)
        short = spans.join(ends, on="symbol").filter(pl.col("date") != pl.col("last_date"))
        if short.height:
            problems.append("symbol(s) end before their last bar: "
                            f"{_listed(short['symbol'].sort().to_list())}")
    return GateResult("session_coverage", not problems,
                      "; ".join(problems) or f"{len(cal)} sessions, no holes", dates=dates)


def member_ends(last_bar: pl.DataFrame, membership: Membership) -> pl.DataFrame:
    """(symbol, last_date): the last session a symbol's feature rows must reach, the last of
    its bars or the last member session before it, whichever is first."""
    ends = []
    for symbol, last in last_bar.select("symbol", "last_date").iter_rows():
        cut = [min(end or last, last) for s, start, end in membership.rows()
               if s == symbol and start <= last]
        if cut:
            day = max(cut)
            ends.append((symbol, day if is_session(day) else previous_session(day)))
    return pl.DataFrame(ends, schema={"symbol": pl.String, "last_date": pl.Date}, orient="row")


def gate_dispersion(
    frame: Judged, min_dispersion: float, max_flat_fraction: float = FLAT_DATES_ALLOWED
) -> list[GateResult]:
    """A feature is flat on a date when std/mean|x| across symbols <= min_dispersion; it
    fails when flat on more than `max_flat_fraction` of the dates with two or more values
    (a bounded rank can tie by chance on a date with a handful of symbols).

    The ratio is unchanged when the feature is multiplied by any constant, so Amihud in
    natural units (~1e-10) and a feature in the thousands are judged alike.
    """
    summary = _summary(frame)
    names = summary.features
    table = summary.dispersion
    compared = table.select(pl.col(names).is_not_null().sum()).row(0)
    flat_counts = table.select((pl.col(names) <= min_dispersion).sum()).row(0)
    results = []
    for n, dates_compared, flat in zip(names, compared, flat_counts, strict=True):
        if dates_compared == 0:
            results.append(GateResult("dispersion", False, f"{n}: no date has two or more"
                                      " values to compare", feature=n))
        elif flat > max_flat_fraction * dates_compared:
            dates = [str(d) for d in table.filter(pl.col(n) <= min_dispersion)["date"]]
            results.append(GateResult(
                "dispersion", False,
                f"{n} is flat across the cross-section (std/mean|x| <= {min_dispersion:g}) on"
                f" {len(dates)} of {dates_compared} date(s): {_listed(dates)}", feature=n,
                dates=dates))
    if not results:
        median = table.select(pl.exclude("date").median()).row(0)
        low = min(zip(median, names, strict=True), key=lambda t: (t[0] is None, t[0]))
        results.append(GateResult("dispersion", True, "no feature flat; lowest"
                                  f" median dispersion {low[0]:.3g} ({low[1]})"))
    return results


def gate_missing(frame: Judged, max_fraction: float,
                 judged_from: Mapping[str, dt.date] | None = None) -> list[GateResult]:
    """Each feature missing on at most `max_fraction` of the rows; a feature of
    `judged_from` only on the rows dated from its date on (one whose input starts later
    than the prices: the intraday family), and not at all when no row is that late."""
    summary = _summary(frame)
    names = summary.features
    if summary.height == 0:
        return [GateResult("missing", False, "no rows")]
    by_date = summary.nulls_by_date
    starts = judged_from or {}
    frac = {}
    for n in names:
        judged = by_date.filter(pl.col("date") >= starts[n]) if n in starts else by_date
        rows = int(judged["rows"].sum()) if judged.height else 0
        frac[n] = float(judged[n].sum()) / rows if rows else 0.0
    results = []
    for n in names:
        if frac[n] > max_fraction:
            judged = by_date.filter(pl.col("date") >= starts[n]) if n in starts else by_date
            worst = (judged.filter(pl.col(n) > 0)
                     .sort([n, "date"], descending=[True, False]).head(MAX_LISTED))
            syms = (summary.by_symbol.filter(pl.col(n) > 0)
                    .sort([n, "symbol"], descending=[True, False]).head(5))
            dates = [str(d) for d in worst["date"].to_list()]
            results.append(GateResult(
                "missing", False,
                f"{n} is missing on {frac[n]:.1%} of rows (max {max_fraction:.0%}); worst dates:"
                f" {_listed(dates)}; worst symbols: {_listed(syms['symbol'].to_list())}",
                feature=n, dates=dates, details={"fraction": frac[n]}))
    if not results:
        top = max(names, key=lambda k: frac[k])
        results.append(GateResult("missing", True, f"max missing {frac[top]:.2%} ({top})"))
    return results


def run_gates(
    frame: Judged,
    *,
    universe: Sequence[str],
    last_bar: pl.DataFrame | None = None,
    max_missing_fraction: float = 0.05,
    min_dispersion: float = 1e-6,
    extra: Sequence[GateResult] = (),
    membership: Membership | None = None,
    excused: Mapping[str, str] | None = None,
    names: Sequence[str] = FEATURE_NAMES,
    warmup: int = MAX_LOOKBACK,
    judged_from: Mapping[str, dt.date] | None = None,
) -> GateReport:
    """Run every data gate on `frame` (date, symbol, features); `extra` appends results of
    gates computed elsewhere (the lookahead check). `membership`: a dated universe's
    intervals (coverage is expected on member dates only). `names`: the features expected
    (the registry's, plus user features); `warmup`: their largest look-back; `judged_from`:
    features whose missing share counts only from a date on (`gate_missing`)."""
    summary = _summary(frame)
    results = [gate_feature_count(summary, names), gate_types(summary)]
    if "date" in summary.columns and "symbol" in summary.columns and summary.dispersion.width:
        results += [gate_symbols(summary, universe, last_bar, membership, excused, warmup),
                    gate_sessions(summary, last_bar, membership)]
        results += gate_dispersion(summary, min_dispersion)
        results += gate_missing(summary, max_missing_fraction, judged_from)
    return GateReport(results + list(extra))


def perturb_after(prices: pl.DataFrame, cutoff: dt.date, seed: int = 0) -> pl.DataFrame:
    """Multiply every bar strictly after `cutoff` by random factors (prices 0.5-1.5, the same
    factor for a bar's open/high/low/close; volume 0.2-5), every other number column of the
    bar (vwap, the intraday fields) by a factor of its own (0.5-1.5), and drop 5% of those
    bars."""
    rng = np.random.default_rng(seed)
    n = prices.height
    after = prices["date"] > cutoff
    pf = np.where(after.to_numpy(), rng.uniform(0.5, 1.5, n), 1.0)
    vf = np.where(after.to_numpy(), np.exp(rng.uniform(np.log(0.2), np.log(5.0), n)), 1.0)
    keep = ~(after.to_numpy() & (rng.uniform(size=n) < 0.05))
    cols = [pl.col(c) * pl.Series(pf) for c in ("open", "high", "low", "close")]
    cols.append(pl.col("volume") * pl.Series(vf))
    if "dollar_volume" in prices.columns:
        cols.append(pl.col("dollar_volume") * pl.Series(pf * vf))
    done = {"open", "high", "low", "close", "volume", "dollar_volume"}
    for name, dtype in prices.schema.items():
        if name not in done and dtype.is_float():
            cols.append(pl.col(name) * pl.Series(np.where(after.to_numpy(),
                                                          rng.uniform(0.5, 1.5, n), 1.0)))
    return prices.with_columns(cols).filter(pl.Series(keep))


def compare_until(
    base: pl.DataFrame, other: pl.DataFrame, cutoff: dt.date, rtol: float = LOOKAHEAD_RTOL
) -> dict[str, list[str]]:
    """Features whose values at dates <= cutoff differ between two builds -> dates differing.

    Rows present in one build and not the other count as a difference under key "rows".
    """
    a = base.filter(pl.col("date") <= cutoff)
    b = other.filter(pl.col("date") <= cutoff)
    keys = ["date", "symbol"]
    joined = a.join(b, on=keys, how="inner", suffix="__p")
    diffs: dict[str, list[str]] = {}
    unmatched = pl.concat([a.join(b, on=keys, how="anti").select(keys),
                           b.join(a, on=keys, how="anti").select(keys)])
    if unmatched.height:
        diffs["rows"] = sorted({str(d) for d in unmatched["date"].to_list()})
    names = [c for c in a.columns if c.startswith("f_") and c in b.columns]
    differs = joined.select(_differs(n, rtol) for n in names)
    for n, any_differs in zip(names, differs.select(pl.all().any()).row(0) if names else (),
                              strict=True):
        if any_differs:
            dates = joined.filter(differs[n])["date"].unique().sort()
            diffs[n] = [str(d) for d in dates]
    return diffs


def _differs(name: str, rtol: float) -> pl.Expr:
    """Per joined row: feature `name` differs from its `__p` twin (missing on one side, or
    apart by more than rtol relative)."""
    x, y = pl.col(name), pl.col(f"{name}__p")
    tol = rtol * pl.max_horizontal(x.abs(), y.abs()) + 1e-300
    return ((x.is_null() != y.is_null()) | ((x - y).abs() > tol).fill_null(False)).alias(name)


def check_lookahead(
    prices: pl.DataFrame,
    compute: Callable[[pl.DataFrame], pl.DataFrame],
    cutoff: dt.date,
    seed: int = 0,
) -> GateResult:
    """Perturb every bar after `cutoff`, recompute with `compute`, and require every feature
    at dates <= cutoff to be unchanged (to a relative 1e-12)."""
    base = compute(prices)
    other = compute(perturb_after(prices, cutoff, seed))
    diffs = compare_until(base, other, cutoff)
    checked = base.filter(pl.col("date") <= cutoff).height
    if checked == 0:
        return GateResult("lookahead", False, f"no feature rows at or before {cutoff} to check")
    if diffs:
        name = next(iter(diffs))
        return GateResult(
            "lookahead", False,
            f"{name} at or before {cutoff} changed when bars after {cutoff} were perturbed,"
            f" on {_listed(diffs[name])}; affected: {_listed(list(diffs))}",
            feature=name, dates=diffs[name], details={"features": list(diffs)})
    return GateResult("lookahead", True, f"{checked} rows at or before {cutoff} unchanged after"
                      " perturbing every later bar", details={"cutoff": str(cutoff)})
