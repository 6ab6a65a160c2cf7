"""The report's sections, each from what one version holds (`ReportInputs`).

A section whose input the version lacks (no backtest run yet, no published prediction
scored yet) says so in one sentence and what to run, instead of an empty chart.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from aurora.ops.tracking import Tracked
from aurora.predict.evaluate import skill
from aurora.report import charts, data
from aurora.report.page import Note, Section, Table
from aurora.store.manifest import Manifest

ROLLING_SESSIONS = 63  # about a quarter
DRIFT_SESSIONS = 60
HEALTH_YEARS = 3  # feature health reads this much history at least
SHOWN_FINDINGS = 40
COVERAGE_ROWS = 150  # symbols a coverage heatmap can show legibly
SHOWN_NAMES = 10
COST_KINDS = ("commission", "spread", "impact", "borrow")
SELECTION_CAVEAT = ("The verdict assumes the model's settings were not chosen on these same "
                    "dates: Aurora's defaults were chosen on the S&P 500 sample's 2017-2018 "
                    "(docs/predict.md), where only the nested walk-forward is evidence.")


@dataclass
class ReportInputs:
    """What the report reads from one version; None (or empty) for what it does not hold.

    `bars`: date, symbol of the raw bars; `prices`: adjusted closes (date, symbol, close);
    `walk_forward`: the out-of-sample scores (model, date, symbol, score, label)."""

    version: str
    manifest: Manifest
    bars: pl.DataFrame
    prices: pl.DataFrame | None = None
    validation: dict[str, Any] | None = None
    features: pl.DataFrame | None = None
    predictions: dict[str, Any] | None = None
    evaluation: dict[str, Any] | None = None
    walk_forward: pl.DataFrame | None = None
    backtest: dict[str, Any] | None = None
    sectors: pl.DataFrame | None = None
    tracked: list[Tracked] = field(default_factory=list)
    tracking_problem: str | None = None
    inputs_sha256: dict[str, str | None] = field(default_factory=dict)  # prices, features


def _pct(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value * 100:.{digits}f}%"


def _num(value: float | None, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def run_and_data(inputs: ReportInputs) -> Section:
    """The version, its prices' coverage and the validation findings."""
    section = Section("The run and its data", "data")
    m = inputs.manifest
    entry = m.prices_entry()
    meta = (lambda key: entry.meta(key)) if entry is not None else (lambda key: None)
    bars = inputs.bars
    rows = [("version", m.version), ("written by", f"{m.stage} at {m.created_at:%Y-%m-%d %H:%M} "
                                                   "UTC"),
            ("prices", f"{bars.height:,} bars, {bars['symbol'].n_unique():,} symbols, "
                       f"{bars['date'].min()} .. {bars['date'].max()}" if bars.height else
             "none"),
            ("source", f"{meta('source_url') or 'n/a'} (feed {meta('feed') or 'n/a'}, "
                       f"adjustment {meta('adjustment') or 'n/a'})"),
            ("synthetic market", "yes (test bed, not market data)" if meta("synthetic")
             else "no")]
    section.blocks.append(Table(("", ""), rows))
    if bars.height:
        covered = data.coverage(bars)
        symbols = covered["symbol"].n_unique()
        if symbols > COVERAGE_ROWS:
            covered = data.worst_covered(covered, COVERAGE_ROWS)
            section.blocks.append(Note(f"Coverage shows the {COVERAGE_ROWS} of {symbols:,} "
                                       "symbols with the most missing sessions."))
        section.blocks.append(charts.coverage_heatmap(covered))
    findings = (inputs.validation or {}).get("findings")
    if findings is None:
        section.blocks.append(Note("This version holds no validation report: run "
                                   "`aurora validate`."))
    elif not findings:
        section.blocks.append(Note("Validation: no finding."))
    else:
        order = {"error": 0, "warning": 1}
        ranked = sorted(findings, key=lambda f: (order.get(f.get("severity"), 2),
                                                 -(f.get("count") or 0)))
        section.blocks.append(Table(
            ("severity", "check", "symbol", "count", "message"),
            [(f.get("severity"), f.get("check"), f.get("symbol") or "", f.get("count"),
              f.get("message")) for f in ranked[:SHOWN_FINDINGS]], frozenset({3})))
        if len(ranked) > SHOWN_FINDINGS:
            section.blocks.append(Note(f"{len(ranked) - SHOWN_FINDINGS} more findings in "
                                       "validation.json."))
    return section


def training_window(predictions: dict[str, Any] | None) -> tuple[dt.date, dt.date] | None:
    """The first and last feature date the published model trained on (None: unknown)."""
    window = ((predictions or {}).get("model") or {}).get("training_window") or {}
    first, last = window.get("first_feature_date"), window.get("last_feature_date")
    if not first or not last:
        return None
    return dt.date.fromisoformat(first), dt.date.fromisoformat(last)


def feature_health(inputs: ReportInputs) -> Section:
    """Missing share and dispersion per feature and month; drift of the recent sessions."""
    section = Section("Feature health", "features")
    features = inputs.features
    if features is None or features.height == 0:
        section.blocks.append(Note("This version holds no features: run `aurora build`."))
        return section
    names = [c for c in features.columns if c.startswith("f_")]
    section.blocks.append(Note(f"Feature dates {features['date'].min()} .. "
                               f"{features['date'].max()}: the model's training window and at "
                               f"least the last {HEALTH_YEARS} years."))
    section.blocks += [charts.missing_heatmap(data.missing_share(features, names)),
                       charts.dispersion_heatmap(data.dispersion(features, names))]
    window = training_window(inputs.predictions)
    section.blocks.append(charts.drift_bars(
        data.drift(features, names, DRIFT_SESSIONS, window), DRIFT_SESSIONS))
    section.blocks.append(Note(
        f"Drift compares the last {DRIFT_SESSIONS} feature dates with "
        + (f"the model's training window {window[0]} .. {window[1]}, up to the first of "
           "them." if window else
           "every earlier date (no published model to name a training window).")))
    return section


def _verdict(evaluation: dict[str, Any]) -> Note:
    judged = skill(evaluation)
    return Note(judged["verdict"], "verdict-yes" if judged["shows_skill"] else "verdict-no")


def model(inputs: ReportInputs, quantiles: int) -> Section:
    """IC over time, by horizon and sector, quantile returns, with the skill verdict."""
    section = Section("The model, out of sample", "model")
    evaluation = inputs.evaluation
    if evaluation is None:
        section.blocks.append(Note("This version holds no walk-forward evaluation: run "
                                   "`aurora predict` or `aurora evaluate`."))
        return section
    section.blocks.append(_verdict(evaluation))
    section.blocks.append(Note(SELECTION_CAVEAT))
    if evaluation.get("status") != "ok":
        section.blocks.append(Note(str(evaluation.get("message", evaluation.get("status")))))
        return section
    main, horizon = evaluation["main_model"], int(evaluation["horizon"])
    p = evaluation["protocol"]
    section.blocks.append(Table(("model", "rank IC", "t (NW)", "IC", "spread (bps)",
                                 "top turnover"), [
        (name, _num(m["rank_ic"]["mean"], ".4f"), _num(m["rank_ic"]["t"], ".2f"),
         _num(m["ic"]["mean"], ".4f"),
         _num(None if m["spread"]["mean"] is None else m["spread"]["mean"] * 1e4, ".1f"),
         _num(m["top_quantile_turnover"], ".2f"))
        for name, m in evaluation["models"].items()], frozenset({1, 2, 3, 4, 5})))
    section.blocks.append(Note(
        f"{p['folds']} folds, {p['first_test_date']} .. {p['last_test_date']}, horizon "
        f"{horizon} sessions, purge {p['purge_sessions']} + embargo {p['embargo_sessions']} "
        "sessions; every score from a model trained only on earlier data."))
    daily = pl.DataFrame(evaluation.get("daily") or [])
    if daily.height:
        daily = daily.filter(pl.col("model") == main).with_columns(
            pl.col("date").str.to_date())
        section.blocks.append(charts.ic_over_time(
            data.rolling_ic(daily, ROLLING_SESSIONS), ROLLING_SESSIONS, main))
    oos = inputs.walk_forward
    if oos is None or inputs.prices is None:
        section.blocks.append(Note("This version holds no out-of-sample scores "
                                   "(walk_forward.parquet): run `aurora predict` again for "
                                   "the charts by horizon, sector and quantile."))
        return section
    oos = oos.filter(pl.col("model") == main)
    scores = oos.select("date", "symbol", "score")
    section.blocks.append(charts.ic_by_horizon_bars(data.ic_by_horizon(scores,
                                                                       inputs.prices)))
    if inputs.sectors is not None:
        section.blocks.append(charts.ic_by_sector_bars(
            data.ic_by_sector(oos, inputs.sectors, horizon)))
    else:
        section.blocks.append(Note("No sector map in this version: `aurora import "
                                   "sector-map` adds the rank IC by sector."))
    section.blocks += [
        charts.quantile_bars(data.quantile_means(oos, quantiles), horizon),
        charts.cumulative_quantiles(data.cumulative_quantile_returns(scores, inputs.prices,
                                                                     quantiles))]
    return section


def backtest(inputs: ReportInputs) -> Section:
    """Equity, drawdown, turnover and costs of the version's backtest."""
    section = Section("The backtest, after costs", "backtest")
    body = inputs.backtest
    if body is None:
        section.blocks.append(Note("This version holds no backtest: run `aurora backtest`."))
        return section
    stale = [kind for kind in ("prices", "features")
             if body.get(f"{kind}_sha256") != inputs.inputs_sha256.get(kind)]
    if stale:
        section.blocks.append(Note(
            f"This backtest was run on other {' and '.join(stale)} (version "
            f"{body.get('store_version')}) than this version holds: run `aurora backtest` "
            "again for one that matches."))
    s = body["settings"]
    section.blocks.append(Note(
        f"{s['construction']} ({s['weighting']} weights), held {s['holding']} sessions "
        f"({s['mode']}), book {s['book_usd']:,.0f} USD, model {body.get('model')}, "
        f"{body['period'][0]} .. {body['period'][1]}."))
    rows = [(label, _pct(body[k]["annual_return"]), _pct(body[k]["annual_volatility"]),
             _num(body[k]["sharpe"], ".2f"), _num(body[k]["sortino"], ".2f"),
             _pct(body[k]["max_drawdown"]), _pct(body[k]["hit_rate"]))
            for k, label in (("gross", "gross"), ("net", "net"),
                             ("benchmark", "equal-weight universe"))]
    section.blocks.append(Table(("", "annual return", "volatility", "Sharpe", "Sortino",
                                 "max drawdown", "hit rate"), rows, frozenset(range(1, 7))))
    costs, cap = body["costs"]["annual_bps"], body.get("capacity") or {}
    section.blocks.append(Table(
        ("annual turnover", *[f"{k} (bps/yr)" for k in COST_KINDS], "capacity (USD)"),
        [(f"{body['turnover']['annual']:.1f}x", *[_num(costs.get(k), ".1f")
                                                  for k in COST_KINDS],
          _capacity(cap))], frozenset(range(6))))
    daily = pl.DataFrame(body["daily"]).with_columns(pl.col("date").str.to_date())
    section.blocks += [charts.equity_lines(daily), charts.drawdown_area(daily),
                       charts.turnover_lines(daily, 21),
                       charts.cost_bars(data.monthly_costs(daily, COST_KINDS))]
    return section


def _capacity(cap: dict[str, Any]) -> str:
    value = cap.get("book")
    if value is None:
        return f"n/a: {cap.get('reason', 'not computed')}"
    return f"{value:,.0f}"


def tracking(inputs: ReportInputs, window: int) -> Section:
    """Realised rank IC of the published predictions."""
    section = Section("Published predictions, tracked", "tracking")
    if inputs.tracking_problem:
        section.blocks.append(Note(f"Tracking unavailable: {inputs.tracking_problem}"))
        return section
    through = (inputs.predictions or {}).get("decision_date")
    latest: dict[tuple[str, str | None], Tracked] = {}
    for r in inputs.tracked:  # by decision date, then version: the newest row of each wins
        if r.rank_ic is not None and (through is None or r.decision_date <= through):
            latest[(r.decision_date, r.model)] = r
    rows = list(latest.values())
    if not rows:
        section.blocks.append(Note("No published prediction has reached its horizon yet "
                                   "(`aurora track` scores them once the prices arrive)."))
        return section
    frame = pl.DataFrame(
        [(dt.date.fromisoformat(r.decision_date), r.rank_ic, r.walk_forward_rank_ic)
         for r in rows],
        schema={"decision_date": pl.Date, "rank_ic": pl.Float64,
                "walk_forward_rank_ic": pl.Float64}, orient="row")
    section.blocks.append(charts.tracking_lines(frame, window))
    section.blocks.append(Table(
        ("decision date", "model", "names", "rank IC", "top-bottom spread", "top-k return",
         "universe return"),
        [(r.decision_date, r.model, r.names, _num(r.rank_ic, ".4f"), _pct(r.spread, 2),
          _pct(r.top_k_return, 2), _pct(r.universe_return, 2)) for r in rows[-20:][::-1]],
        frozenset({2, 3, 4, 5, 6})))
    return section


def names(inputs: ReportInputs) -> Section:
    """Today's top and bottom of the published ranking."""
    section = Section("Today's ranking", "ranking")
    doc = inputs.predictions
    if doc is None:
        section.blocks.append(Note("This version holds no predictions: run `aurora predict`."))
        return section
    evaluation = doc.get("evaluation") or {}
    section.blocks.append(_verdict(evaluation))
    sector = {} if inputs.sectors is None else dict(inputs.sectors.select(
        "symbol", "sector").iter_rows())
    scored = [e for e in doc["predictions"] if e.get("score") is not None]
    section.blocks.append(Note(
        f"Decision date {doc['decision_date']} (features of {doc['feature_date']}), horizon "
        f"{doc['horizon']} sessions, {len(scored)} names ranked."))

    def table(entries: list[dict[str, Any]]) -> Table:
        return Table(("rank", "symbol", "sector", "score", "percentile"),
                     [(e["rank"], e["symbol"], sector.get(e["symbol"], ""),
                       f"{e['score']:+.5f}", f"{e['percentile']:.1f}") for e in entries],
                     frozenset({0, 3, 4}))

    section.blocks += [Note(f"Top {min(SHOWN_NAMES, len(scored))}:"),
                       table(scored[:SHOWN_NAMES]),
                       Note(f"Bottom {min(SHOWN_NAMES, len(scored))}:"),
                       table(scored[-SHOWN_NAMES:])]
    return section
