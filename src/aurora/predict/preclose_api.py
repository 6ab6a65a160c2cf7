"""Store-level entry points of the pre-close prediction (`aurora.predict.preclose`):
`predict_preclose` (what `aurora stream` calls at the cut time) and `evaluate_preclose`
(`aurora evaluate --preclose`, on the stored minute bars)."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Collection
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import polars as pl

from aurora.atomic import atomic_write_json
from aurora.calendar import previous_session, sessions_back
from aurora.config import AuroraConfig
from aurora.errors import ConfigError, DataValidationError, StoreError
from aurora.features.builder import FeatureSet, load_inputs
from aurora.features.registry import INTRADAY
from aurora.intraday.daily import load_daily_fields, with_intraday
from aurora.intraday.store import intraday_store, read_intraday, stored_days
from aurora.predict import metrics
from aurora.predict.dataset import build_panel
from aurora.predict.evaluate import make_folds, skill
from aurora.predict.models import models_from_config
from aurora.predict.preclose import (
    adjust_partial,
    as_decision_rows,
    cut_fields,
    cut_instant,
    partial_bars,
    preclose_features,
)
from aurora.predict.predictions import build_document
from aurora.predict.train import fit_models, matrix, train_and_score
from aurora.progress import Progress, Steps
from aurora.store import Store
from aurora.store.bars import read_prices
from aurora.store.datasets import dataset_digest, read_features
from aurora.store.documents import load_schema, validate_document
from aurora.store.files import (
    EVALUATION,
    EVALUATION_PRECLOSE,
    FEATURES,
    FEATURES_DATASET,
    FEATURES_META,
    PREDICTIONS_PRECLOSE,
)
from aurora.universe import UniverseLike, as_universe, resolve_universe

MINUTES = "1Min"


@lru_cache(maxsize=1)
def preclose_schema() -> dict[str, Any]:
    """predictions.json's schema plus `as_of`: the instant today's bars were cut at, and
    the optional `halted_at_cut`: the symbols halted at that instant."""
    schema = copy.deepcopy(load_schema())
    schema["properties"]["as_of"] = {
        "type": "string", "format": "date-time",
        "description": "The features use today's minute bars ended by this instant (UTC); "
                       "the ranking is for trading at today's close (decision_date)."}
    schema["properties"]["halted_at_cut"] = {
        "type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True,
        "description": "The symbols whose trading was halted at as_of, by the stream's "
                       "trading statuses (sorted). They stay in the ranking, scored on "
                       "their minutes before the halt; an order at the close may not fill. "
                       "Absent when the statuses were not known."}
    schema["required"] = [*schema["required"], "as_of"]
    return schema


@dataclass(frozen=True)
class PrecloseResult:
    document: dict[str, Any]
    version: str

    def summary_lines(self) -> list[str]:
        doc = self.document
        scored = [e["symbol"] for e in doc["predictions"] if e["score"] is not None]
        halted = doc.get("halted_at_cut") or []
        return [f"pre-close ranking for the close of {doc['decision_date']} as of "
                f"{doc['as_of']}: {len(scored)} ranked; top: {', '.join(scored[:10])}",
                *([f"halted at the cut (still ranked, on their minutes before the halt): "
                   f"{', '.join(halted)}"] if halted else []),
                f"wrote {PREDICTIONS_PRECLOSE} in version {self.version}"]


def _universe(store: Store, config: AuroraConfig, universe: UniverseLike | None):
    return as_universe(universe) if universe is not None else resolve_universe(config, store)


def _stored_summary(store: Store) -> dict[str, Any]:
    path = store.verified_path(EVALUATION)
    if path is None:
        return {"status": "insufficient_history",
                "message": "no walk-forward evaluation stored: run `aurora predict`"}
    body = json.loads(path.read_text())
    body.pop("key", None)
    summary = {k: v for k, v in body.items() if k not in ("daily", "folds")}
    return {**summary, "skill": skill(summary)} if summary.get("status") == "ok" else summary


def predict_preclose(store: Store, config: AuroraConfig, minutes: pl.DataFrame,
                     day: dt.date, *, universe: UniverseLike | None = None,
                     now: dt.datetime | None = None,
                     halted: Collection[str] | None = None) -> PrecloseResult:
    """Rank the universe for trading at `day`'s close from its minute bars (intraday
    schema) ended by `stream.cut_time`, and publish predictions-preclose.json. The model is
    trained as `aurora predict` trains it (the stored features up to the session before),
    and scores the pre-close rows. `halted`: the symbols halted at the cut (the stream's
    statuses), named in the file's `halted_at_cut` (those of the universe, sorted; the
    property is left out when None) and kept in the ranking. DataValidationError when no
    partial bar can be made or the history is too short; StoreError when the store lacks
    prices or features."""
    inputs = load_inputs(store)
    chosen = _universe(store, config, universe)
    symbols = list(chosen.symbols)
    features_set = _stored_feature_set(store, config)
    cut = config.stream.cut_time
    partial = partial_bars(minutes.filter(pl.col("date") == day), cut)
    if partial.height == 0:
        raise DataValidationError(f"no minute bar of {day} ended by {cut:%H:%M} New York: "
                                  "nothing to rank before the close")
    raw = read_prices(store, start=sessions_back(day, 10), end=previous_session(day))
    adjusted = adjust_partial(partial, inputs.prices, raw, inputs.actions)
    if features_set.intraday:
        inputs.intraday = _intraday_history(
            config, symbols, sessions_back(day, features_set.max_lookback + 25))
        adjusted = with_intraday(adjusted, cut_fields(minutes.filter(pl.col("date") == day),
                                                      cut))
    rows = preclose_features(inputs, adjusted, [day], features=features_set, symbols=symbols)
    feature_date = previous_session(day)
    history = read_features(store, end=feature_date)
    features = pl.concat([history.filter(pl.col("date") < feature_date),
                          as_decision_rows(rows).select(history.columns)],
                         how="vertical_relaxed")
    prices = inputs.prices.filter(pl.col("date") <= feature_date)
    members = chosen.members_on(day)
    result = train_and_score(features, prices, day, config, symbols=symbols, members=members)
    as_of = cut_instant(day, cut)
    doc = build_document(result, evaluation=_stored_summary(store), generated_at=now, inputs={
        "prices_sha256": inputs.prices_sha256, "store_version": inputs.version,
        "features_sha256": dataset_digest(store.manifest(inputs.version), FEATURES_DATASET,
                                          legacy=FEATURES) or "0" * 64,
        "universe": chosen.source, "symbols": len(members),
        "synthetic": False})
    doc["as_of"] = as_of.isoformat().replace("+00:00", "Z")
    if halted is not None:
        doc["halted_at_cut"] = sorted(set(halted) & set(symbols))
    validate_document(doc, PREDICTIONS_PRECLOSE, schema=preclose_schema())
    with store.transaction("predict-preclose", base=inputs.version,
                           params={"decision_date": day.isoformat(),
                                   "as_of": doc["as_of"]}) as txn:
        atomic_write_json(txn.path(PREDICTIONS_PRECLOSE), doc)
        txn.describe(PREDICTIONS_PRECLOSE, decision_date=day.isoformat(), as_of=doc["as_of"])
    version = store.current_version()
    assert version is not None
    return PrecloseResult(doc, version)


def evaluate_preclose(store: Store, config: AuroraConfig, *,
                      universe: UniverseLike | None = None,
                      progress: Progress | None = None) -> dict[str, Any]:
    """The walk-forward of the pre-close variant on the stored 1Min bars, beside the
    close-to-close rows of the same dates, scored by the same fold models; publishes
    evaluation_preclose.json and returns its summary. StoreError without minute bars."""
    minutes_store = intraday_store(config.data_dir, MINUTES)
    version = minutes_store.current_version()
    if version is None:
        raise StoreError("no 1Min bars stored: run `aurora fetch --timeframe 1Min` first")
    days = list(stored_days(minutes_store.manifest(version)))
    inputs = load_inputs(store)
    chosen = _universe(store, config, universe)
    symbols = list(chosen.symbols)
    cut = config.stream.cut_time
    features_set = _stored_feature_set(store, config)
    partial, fields = [], []
    for d in days:
        minutes = read_intraday(config.data_dir, MINUTES, start=d, end=d, symbols=symbols)
        partial.append(partial_bars(minutes, cut))
        if features_set.intraday:
            fields.append(cut_fields(minutes, cut))
    raw = read_prices(store, start=sessions_back(days[0], 10), end=days[-1])
    adjusted = adjust_partial(pl.concat(partial, how="vertical_relaxed"), inputs.prices, raw,
                              inputs.actions)
    if features_set.intraday:
        inputs.intraday = _intraday_history(config, symbols)
        adjusted = with_intraday(adjusted, pl.concat(fields))
    rows = preclose_features(inputs, adjusted, days, features=features_set,
                             symbols=symbols, progress=progress)
    close = read_features(store).filter(pl.col("symbol").is_in(symbols))
    summary = _score_both(close, as_decision_rows(rows).select(close.columns), inputs.prices,
                          config, progress)
    summary.update(cut_time=cut.strftime("%H:%M"), minute_days=len(days),
                   first_minute_day=days[0].isoformat(), last_minute_day=days[-1].isoformat())
    with store.transaction("evaluate-preclose", base=inputs.version) as txn:
        atomic_write_json(txn.path(EVALUATION_PRECLOSE), summary)
        txn.describe(EVALUATION_PRECLOSE, status=summary["status"])
    return summary


INTRADAY_NAMES = tuple(f.name for f in INTRADAY)


def _stored_feature_set(store: Store, config: AuroraConfig) -> FeatureSet:
    """The configured feature set, matched with the features stored in `store`'s latest
    version, on which the model is trained: the intraday family is added when they hold it
    (a build with `aurora build --intraday` and no `build.intraday`). ConfigError naming
    the columns and settings when they still differ (user features changed since the
    build)."""
    path = store.verified_path(FEATURES_META)
    if path is None:
        raise StoreError(f"{store.root}: no features stored (run `aurora build` first)")
    stored = [f["name"] for f in json.loads(path.read_text(encoding="utf-8"))["features"]]
    configured = FeatureSet.configured(config)
    if not configured.intraday and set(INTRADAY_NAMES) <= set(stored):
        configured = replace(configured, intraday=True)
    if configured.names != stored:
        only_stored = [n for n in stored if n not in configured.names]
        only_configured = [n for n in configured.names if n not in stored]
        raise ConfigError(
            "the stored features differ from the configured ones (build.features, "
            f"build.intraday): stored only {', '.join(only_stored) or 'none'}; configured "
            f"only {', '.join(only_configured) or 'none'}: run `aurora build` again")
    return configured


def _intraday_history(config: AuroraConfig, symbols: list[str],
                      start: dt.date | None = None) -> pl.DataFrame:
    """The intraday fields of the stored full days (the intraday family's history)."""
    return load_daily_fields(config.data_dir, config.build.intraday_timeframe, start=start,
                             symbols=symbols)


def _score_both(close: pl.DataFrame, pre: pl.DataFrame, prices: pl.DataFrame,
                config: AuroraConfig, progress: Progress | None) -> dict[str, Any]:
    cfg = config.predict
    panel = build_panel(close, prices, cfg.horizon)
    pre_panel = build_panel(pre, prices, cfg.horizon)
    folds = make_folds(panel, config)
    steps = Steps(progress, "pre-close walk-forward folds", len(folds))
    scored = []
    labelled = pl.col("fwd_return").is_not_null()
    for fold in folds:
        dates = panel.clock.days[fold.test_start:fold.test_end + 1]
        pre_test = pre_panel.frame.filter(pl.col("date").is_in(dates) & labelled)
        if pre_test.height:
            main, _ = models_from_config(cfg, panel.features)
            (fit,), _ = fit_models(panel, fold.test_start, config, [main])
            same = pre_test.get_column("date").unique().to_list()
            close_test = panel.frame.filter(pl.col("date").is_in(same) & labelled)
            for variant, test in (("close_to_close", close_test), ("preclose", pre_test)):
                scored.append(test.select(
                    pl.lit(variant).alias("variant"), "date", "symbol",
                    pl.Series("score", fit.predict(matrix(test, panel.features))),
                    pl.col("fwd_return").alias("label")))
        steps.step()
    if not scored:
        return {"status": "insufficient_history",
                "message": "no walk-forward test date has both pre-close rows and labels: "
                           "fetch minute bars of dates the walk-forward tests"}
    return _summary(pl.concat(scored), cfg.horizon)


def _summary(oos: pl.DataFrame, horizon: int) -> dict[str, Any]:
    lag = horizon - 1
    daily = {v: metrics.information_coefficient(oos.filter(pl.col("variant") == v),
                                                method="spearman")
             for v in ("close_to_close", "preclose")}
    paired = daily["preclose"].select("date", pre="ic").join(
        daily["close_to_close"].select("date", close="ic"), on="date")
    return {
        "status": "ok", "horizon": horizon,
        "label": "close[t + horizon] / close[t] - 1: both trade at the close of t, the "
                 "pre-close row with t's bars to the cut, the close-to-close row with "
                 "t - 1's",
        "dates": paired.height,
        "first_date": str(paired["date"].min()), "last_date": str(paired["date"].max()),
        "close_to_close": {"rank_ic": metrics.series_summary(paired["close"].to_numpy(), lag)},
        "preclose": {"rank_ic": metrics.series_summary(paired["pre"].to_numpy(), lag)},
        "preclose_minus_close_rank_ic": metrics.series_summary(
            (paired["pre"] - paired["close"]).to_numpy(), lag),
    }


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The pre-close evaluation for a person."""
    if summary.get("status") != "ok":
        return [f"pre-close evaluation: {summary.get('message', summary.get('status'))}"]

    def fmt(part: dict[str, Any]) -> str:
        if part.get("mean") is None or part.get("t") is None:
            return "n/a"
        return f"{part['mean']:+.4f} (t {part['t']:+.2f})"

    return [f"pre-close walk-forward ({summary['dates']} dates, {summary['first_date']} .. "
            f"{summary['last_date']}, cut {summary['cut_time']} New York, horizon "
            f"{summary['horizon']}):",
            f"  rank IC, pre-close:      {fmt(summary['preclose']['rank_ic'])}",
            f"  rank IC, close-to-close: {fmt(summary['close_to_close']['rank_ic'])}",
            f"  difference:              {fmt(summary['preclose_minus_close_rank_ic'])}"]

