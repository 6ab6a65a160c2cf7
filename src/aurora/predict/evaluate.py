"""Purged walk-forward evaluation of the model and the baseline.

Protocol (the production protocol of `train.train_and_score`, replayed over history):

1. The feature dates are cut into consecutive test blocks of `test_sessions` sessions.
2. The models for a block are trained once, as if deciding on the session after the block's
   first feature date `a`: training labels end at least `horizon` sessions (the purge) plus
   `embargo_sessions` (the embargo) before the close of `a`, and the training window is the
   latest `train_sessions` allowed feature dates. So no training label overlaps the period a
   test label covers, and features near the boundary (serially correlated) are held back.
   In a walk-forward split no training row follows a test row, so de Prado's embargo
   (dropping training rows just after a test block) would be empty; here the embargo is the
   extra gap after the purge, identical in `aurora predict`.
3. The first block starts once `min_train_sessions` allowed feature dates exist; the last
   block ends at the last feature date that has a label.
4. Every test row is scored out of sample; IC and rank IC are computed per date across
   symbols against the raw forward return; the t-statistic uses Newey-West standard errors
   with lag horizon - 1 (neighbouring daily labels overlap by horizon - 1 sessions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from aurora.cluster import LocalRunner, Runner
from aurora.config import AuroraConfig
from aurora.errors import DataValidationError
from aurora.predict import metrics
from aurora.predict.dataset import Panel, build_panel
from aurora.predict.models import models_from_config
from aurora.predict.train import fit_models, matrix
from aurora.progress import Progress

FOLDS = "walk-forward folds"


@dataclass(frozen=True)
class Fold:
    """One test block: feature-date sessions [test_start, test_end] (inclusive)."""

    test_start: int
    test_end: int


@dataclass(frozen=True)
class EvaluationReport:
    """Out-of-sample results.

    `summary` is JSON-ready (the part embedded in predictions.json); `daily` has one row per
    (model, date): ic, rank_ic, n; `oos` holds every out-of-sample score (model, date,
    symbol, score, label).
    """

    summary: dict[str, Any]
    daily: pl.DataFrame
    oos: pl.DataFrame = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        """summary plus the per-date IC series (the content of evaluation.json)."""
        daily = self.daily.with_columns(pl.col("date").cast(pl.String))
        return {**self.summary, "daily": daily.to_dicts()}

    def summary_lines(self) -> list[str]:
        """A few human-readable lines (no printing here)."""
        return summary_lines(self.summary)

    def report_lines(self) -> list[str]:
        """The table per model, then the protocol and verdict (`report_lines`)."""
        return report_lines(self.summary)


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def table_lines(summary: dict[str, Any]) -> list[str]:
    """The evaluation summary as a fixed-width text table, one row per model."""
    head = f"{'model':<10} {'IC':>7} {'rank IC':>7} {'sd':>6} {'ICIR':>6} {'t(NW)':>6} " \
        f"{'spread bp':>9} {'turnover':>8}  leakage"
    lines = [f"out-of-sample, horizon {summary['horizon']} sessions", head, "-" * len(head)]
    for name, m in summary["models"].items():
        spread = m["spread"]["mean"]
        lines.append(
            f"{name:<10} {_fmt(m['ic']['mean'], '7.4f')} {_fmt(m['rank_ic']['mean'], '7.4f')} "
            f"{_fmt(m['rank_ic']['std'], '6.3f')} {_fmt(m['rank_ic']['ir'], '6.3f')} "
            f"{_fmt(m['rank_ic']['t'], '6.2f')} "
            f"{_fmt(None if spread is None else spread * 1e4, '9.1f')} "
            f"{_fmt(m['top_quantile_turnover'], '8.2f')}  "
            f"{'PROBABLE' if m['probable_leakage'] else 'no'}"
        )
    return lines


def report_lines(summary: dict[str, Any]) -> list[str]:
    """The table of `table_lines` followed by the protocol and verdict lines (what the CLI
    shows after a walk-forward)."""
    if summary.get("status") != "ok":
        return summary_lines(summary)
    return table_lines(summary) + summary_lines(summary)[len(summary["models"]):]


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """Human-readable lines of an evaluation summary: one per model, then the verdict."""
    if summary.get("status") != "ok":
        return [f"evaluation: {summary.get('message', summary.get('status'))}",
                skill(summary)["verdict"]]
    lines = []
    for name, m in summary["models"].items():
        lines.append(
            f"{name}: rank IC {_fmt(m['rank_ic']['mean'], '.4f')} "
            f"(t {_fmt(m['rank_ic']['t'], '.1f')}, ICIR {_fmt(m['rank_ic']['ir'], '.2f')}), "
            f"IC {_fmt(m['ic']['mean'], '.4f')}, spread "
            f"{_fmt(None if m['spread']['mean'] is None else m['spread']['mean'] * 1e4, '.1f')}"
            f" bp/{summary['horizon']}d, top turnover {_fmt(m['top_quantile_turnover'], '.2f')}"
        )
    p = summary["protocol"]
    lines.append(
        f"{p['folds']} folds, {p['first_test_date']} .. {p['last_test_date']}, "
        f"horizon {summary['horizon']}, purge {p['purge_sessions']} + embargo "
        f"{p['embargo_sessions']} sessions"
    )
    if summary["probable_leakage"]:
        lines.append(
            f"PROBABLE LEAKAGE: mean daily rank IC above {summary['leakage_threshold']}"
        )
    lines.append(skill(summary)["verdict"])
    return lines


SKILL_T = 2.0  # the Newey-West t of the mean daily rank IC that counts as evidence


def skill(summary: dict[str, Any]) -> dict[str, Any]:
    """Whether the walk-forward shows skill: the main model's mean out-of-sample rank IC is
    positive with a Newey-West t (lag horizon - 1, so overlapping labels are not counted
    as independent) of at least SKILL_T, and no leakage is suspected. Returns
    {"shows_skill", "rank_ic", "t", "rule", "verdict"}; `verdict` is the sentence every
    surface prints. A summary without models (too short a history) shows no skill."""
    rule = f"mean rank IC > 0 with Newey-West t >= {SKILL_T:g} (lag horizon - 1)"
    main = summary.get("models", {}).get(summary.get("main_model", ""), {})
    rank_ic = main.get("rank_ic", {})
    mean, t = rank_ic.get("mean"), rank_ic.get("t")
    if summary.get("status") != "ok" or mean is None or t is None:
        return {"shows_skill": False, "rank_ic": mean, "t": t, "rule": rule,
                "verdict": "NO EVIDENCE OF SKILL: no walk-forward result to judge"}
    shows = mean > 0 and t >= SKILL_T and not summary.get("probable_leakage", False)
    if summary.get("probable_leakage"):
        flagged = ", ".join(
            f"{name} {m['rank_ic']['mean']:+.4f}"
            for name, m in summary.get("models", {}).items() if m.get("probable_leakage"))
        verdict = (f"NOT TRUSTED: |mean rank IC| above the leakage threshold "
                   f"{summary.get('leakage_threshold')} ({flagged}); look for lookahead")
    elif shows:
        verdict = f"SKILL: out-of-sample rank IC {mean:+.4f}, t {t:.1f} >= {SKILL_T:g}"
    else:
        verdict = (f"NO EVIDENCE OF SKILL: out-of-sample rank IC {mean:+.4f}, t {t:.1f} "
                   f"(needs > 0 and t >= {SKILL_T:g}); do not trade this ranking on its "
                   "record")
    return {"shows_skill": shows, "rank_ic": mean, "t": t, "rule": rule, "verdict": verdict}


def make_folds(panel: Panel, config: AuroraConfig) -> list[Fold]:
    """Test blocks over the panel's feature dates (see module docstring)."""
    cfg = config.predict
    frame = panel.frame
    labelled = frame.filter(pl.col("fwd_return").is_not_null())
    if labelled.height == 0:
        return []
    first_session = int(frame["session"].min())
    last_labelled = int(labelled["session"].max())
    # The first cutoff whose allowed window holds min_train_sessions sessions.
    earliest = first_session + cfg.min_train_sessions - 1 + 2 * cfg.horizon + \
        cfg.embargo_sessions + 1
    dates = sorted(s for s in frame["session"].unique().to_list()
                   if earliest <= s <= last_labelled)
    return [
        Fold(dates[i], dates[min(i + cfg.test_sessions, len(dates)) - 1])
        for i in range(0, len(dates), cfg.test_sessions)
    ]


def walk_forward(
    features: pl.DataFrame,
    prices: pl.DataFrame,
    config: AuroraConfig,
    *,
    symbols: Sequence[str] | None = None,
    progress: Progress | None = None,
    runner: Runner | None = None,
) -> EvaluationReport:
    """Run the purged walk-forward over all of `features` (labels from `prices.close`).

    `symbols` restricts the panel (default: all). `progress("walk-forward folds", done,
    total)` is called after each fold. `runner` (`aurora.cluster.connect`): where the folds
    are trained, one task each (default: here, in order); the models are deterministic, so
    the report is the same bit for bit wherever they ran. Raises DataValidationError when
    the history is too short for one fold.
    """
    cfg = config.predict
    if symbols is not None:
        features = features.filter(pl.col("symbol").is_in(list(symbols)))
        prices = prices.filter(pl.col("symbol").is_in(list(symbols)))
    panel = build_panel(features, prices, cfg.horizon)
    folds = make_folds(panel, config)
    if not folds:
        raise DataValidationError(
            f"history too short for a walk-forward evaluation: need about "
            f"{cfg.min_train_sessions + 2 * cfg.horizon + cfg.embargo_sessions + cfg.horizon + 2}"
            f" sessions of features with labels, have {panel.frame['session'].n_unique()}"
        )
    models = models_from_config(cfg, panel.features)
    scored = (runner or LocalRunner()).map(
        score_fold, folds, shared=(panel, config),
        progress=(lambda done, total: progress(FOLDS, done, total)) if progress else None)
    return summarise(pl.concat(scored), panel, folds, config, [m.name for m in models])


def score_fold(fold: Fold, shared: tuple[Panel, AuroraConfig]) -> pl.DataFrame:
    """Out-of-sample scores of one fold's test rows by every model trained for it: model,
    date, symbol, score, label (a task: module-level, pickles)."""
    panel, config = shared
    models = models_from_config(config.predict, panel.features)
    fitted, _ = fit_models(panel, fold.test_start, config, models)
    test = panel.frame.filter(pl.col("session").is_between(fold.test_start, fold.test_end)
                              & pl.col("fwd_return").is_not_null())
    x = matrix(test, panel.features)
    return pl.concat([test.select(pl.lit(model.name).alias("model"), "date", "symbol",
                                  pl.Series("score", fit.predict(x)),
                                  pl.col("fwd_return").alias("label"))
                      for model, fit in zip(models, fitted, strict=True)])


def summarise(
    oos: pl.DataFrame, panel: Panel, folds: list[Fold], config: AuroraConfig,
    names: list[str],
) -> EvaluationReport:
    """Metrics per model from the out-of-sample scores."""
    cfg = config.predict
    lag = cfg.horizon - 1
    days = panel.clock.days
    results: dict[str, Any] = {}
    daily_parts = []
    for name in names:
        part = oos.filter(pl.col("model") == name)
        ic = metrics.information_coefficient(part, method="pearson")
        ric = metrics.information_coefficient(part, method="spearman").rename({"ic": "rank_ic"})
        daily = ic.join(ric.drop("n"), on="date").select("date", "ic", "rank_ic", "n")
        daily_parts.append(daily.with_columns(model=pl.lit(name)))
        q = metrics.assign_quantiles(part, cfg.quantiles)
        qdaily = metrics.quantile_daily_returns(q)
        spread = metrics.spread_series(qdaily, cfg.quantiles)
        rank_ic = metrics.series_summary(daily["rank_ic"].to_numpy(), lag)
        results[name] = {
            "ic": metrics.series_summary(daily["ic"].to_numpy(), lag),
            "rank_ic": rank_ic,
            "quantile_mean_returns": metrics.mean_return_by_quantile(qdaily)["mean_return"]
            .to_list(),
            "spread": metrics.series_summary(spread["spread"].to_numpy(), lag),
            "top_quantile_turnover": metrics.quantile_turnover(q, cfg.quantiles)["turnover"]
            .mean(),
            "probable_leakage": metrics.probable_leakage(rank_ic["mean"], cfg.leakage_threshold),
        }
    daily_all = pl.concat(daily_parts).select("model", "date", "ic", "rank_ic", "n")
    paired = daily_parts[0].select("date", main="rank_ic").join(
        daily_parts[1].select("date", base="rank_ic"), on="date", how="inner")
    versus = metrics.series_summary((paired["main"] - paired["base"]).to_numpy(), lag)
    summary = {
        "status": "ok",
        "through": panel.frame["date"].max().isoformat(),
        "horizon": cfg.horizon,
        "label": "close[d + horizon] / close[d] - 1, d = session after the feature date",
        "protocol": {
            "scheme": "purged walk-forward, rolling window",
            "folds": len(folds),
            "test_sessions": cfg.test_sessions,
            "train_sessions": cfg.train_sessions,
            "min_train_sessions": cfg.min_train_sessions,
            "purge_sessions": cfg.horizon,
            "embargo_sessions": cfg.embargo_sessions,
            "first_test_date": days[folds[0].test_start].isoformat(),
            "last_test_date": days[folds[-1].test_end].isoformat(),
            "t_stat": f"Newey-West, lag {lag}",
            "quantiles": cfg.quantiles,
        },
        "leakage_threshold": cfg.leakage_threshold,
        "probable_leakage": any(r["probable_leakage"] for r in results.values()),
        "main_model": names[0],
        "baseline": names[1],
        "models": results,
        # Paired daily rank-IC difference main - baseline, with its Newey-West t: the
        # evidence for "the model at least matches the baseline" (docs/predict.md).
        "main_minus_baseline_rank_ic": versus,
    }
    summary["skill"] = skill(summary)
    return EvaluationReport(summary=summary, daily=daily_all, oos=oos)

