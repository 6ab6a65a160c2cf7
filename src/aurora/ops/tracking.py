"""Tracking of published predictions: is the ranking still working once live?

`track(store, config, history)`:
1. the predictions.json published for each decision date and model (the newest, when
   predict ran again for a date; `published`) not yet in the history's
   `tracked_predictions` table is scored once its horizon has passed in the stored prices:
   the realised return of each ranked symbol is the adjusted close `horizon` sessions after
   the decision date over the decision date's close (the label's definition, on the
   latest version's prices, adjusted point in time);
2. each scored prediction gets a row: names scored, realised rank IC (Spearman, score vs
   realised return), top-minus-bottom quantile mean return, mean return of the top k, the
   universe's mean return, and the walk-forward rank IC the prediction was published with;
3. the alert rules run over the table (`tracking_alerts`):
   - `decay`: over the last `track.window` scored decisions (at least
     `track.min_decisions`), the mean realised rank IC is below zero, or below the
     walk-forward's mean by `track.k` standard errors (the walk-forward's daily standard
     deviation x sqrt(horizon / decisions): neighbouring decisions' labels overlap by
     horizon - 1 sessions, so n of them carry about n / horizon independent outcomes);
   - `probable_leakage`: the newest published prediction carries a walk-forward rank IC
     above `predict.leakage_threshold` (0.1: more than daily equity signals deliver).
   Each is one lasting condition (one open alert, keyed by its rule), resolved when a
   later `track` finds it cleared.
Nothing here prints; the alerts go through `aurora.ops.alerts.raise_alerts` with the run.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import polars as pl

from aurora import calendar
from aurora.adjusted import load_adjusted_prices
from aurora.config import AuroraConfig
from aurora.errors import StoreError
from aurora.ops.alerts import Alert
from aurora.ops.history import History, utc_now_iso
from aurora.predict import metrics
from aurora.store import Store
from aurora.store.files import PREDICTIONS


@dataclass(frozen=True)
class Tracked:
    """One published prediction scored against what happened (returns are fractions)."""

    version: str
    decision_date: str
    horizon: int
    label_end: str
    model: str | None
    names: int
    rank_ic: float | None
    spread: float | None
    top_k: int
    top_k_return: float | None
    universe_return: float | None
    walk_forward_rank_ic: float | None
    walk_forward_rank_ic_std: float | None
    scored_at: str


@dataclass(frozen=True)
class TrackReport:
    """What a `track` call did: `new` rows scored now, `pending` predictions whose horizon
    has not passed yet, every row of the table (`rows`, by decision date) and the alerts."""

    new: list[Tracked]
    pending: int
    rows: list[Tracked]
    alerts: list[Alert]

    def summary_lines(self, window: int) -> list[str]:
        """A few lines a person reads at a glance (no printing here)."""
        lines = [f"tracked {len(self.new)} newly scorable prediction(s); {len(self.rows)} "
                 f"scored in all, {self.pending} waiting for their horizon"]
        recent = [r.rank_ic for r in self.rows[-window:] if r.rank_ic is not None]
        if recent:
            wf = self.rows[-1].walk_forward_rank_ic
            lines.append(f"last {len(recent)} decision(s): realised rank IC "
                         f"{sum(recent) / len(recent):+.4f} (walk-forward "
                         f"{'n/a' if wf is None else f'{wf:+.4f}'})")
        lines += [f"alert [{a.severity}] {a.rule}: {a.message}" for a in self.alerts]
        return lines


def published(store: Store) -> list[tuple[str, dict[str, Any]]]:
    """(version, document) of the predictions.json published for each (decision date,
    model), by decision date: the newest version's when predict ran again for the same date
    (a version that inherits its parent's file publishes nothing new). A document that does
    not match its manifest or is not JSON is skipped (`aurora validate` reports it)."""
    seen: set[str] = set()
    newest: dict[tuple[str, str | None], tuple[str, dict[str, Any]]] = {}
    for version in store.versions():
        entry = store.manifest(version).file(PREDICTIONS)
        if entry is None or entry.sha256 in seen:
            continue
        seen.add(entry.sha256)
        try:
            path = store.verified_path(PREDICTIONS, version)
            assert path is not None
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (StoreError, OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(doc, dict) and doc.get("decision_date") and doc.get("predictions"):
            newest[(str(doc["decision_date"]), model_name(doc))] = (version, doc)
    return [newest[key] for key in sorted(newest, key=lambda k: (k[0], str(k[1])))]


def score_prediction(version: str, doc: dict[str, Any], closes: pl.DataFrame, *,
                     quantiles: int, top_k: int, now: str | None = None) -> Tracked | None:
    """The `Tracked` row of one predictions.json given adjusted `closes` (symbol, date,
    close); None while the close `horizon` sessions after the decision date is not stored.
    """
    decision = dt.date.fromisoformat(doc["decision_date"])
    horizon = int(doc["horizon"])
    ahead = calendar.sessions(decision, decision + dt.timedelta(days=7 * horizon + 14))
    if len(ahead) <= horizon or ahead[0] != decision:
        return None
    label_end = ahead[horizon]
    last = closes.get_column("date").max()
    if last is None or label_end > last:
        return None
    scored = pl.DataFrame([(p["symbol"], p["score"]) for p in doc["predictions"]
                           if p.get("score") is not None],
                          schema={"symbol": pl.String, "score": pl.Float64}, orient="row")
    start = closes.filter(pl.col("date") == decision).select("symbol", c0="close")
    end = closes.filter(pl.col("date") == label_end).select("symbol", c1="close")
    frame = (scored.join(start, on="symbol").join(end, on="symbol")
             .select(pl.lit(decision).alias("date"), "symbol", "score",
                     label=pl.col("c1") / pl.col("c0") - 1))
    rank_ic = metrics.information_coefficient(frame, method="spearman")["ic"]
    buckets = metrics.quantile_daily_returns(metrics.assign_quantiles(frame, quantiles))
    spread = metrics.spread_series(buckets, quantiles)["spread"]
    best = frame.sort("score", "symbol", descending=[True, False]).head(top_k)
    wf_ric = _walk_forward(doc)
    return Tracked(
        version=version, decision_date=decision.isoformat(), horizon=horizon,
        label_end=label_end.isoformat(), model=model_name(doc), names=frame.height,
        rank_ic=_first(rank_ic), spread=_first(spread), top_k=top_k,
        top_k_return=(float(best["label"].mean()) if best.height >= top_k else None),
        universe_return=float(frame["label"].mean()) if frame.height else None,
        walk_forward_rank_ic=wf_ric.get("mean"), walk_forward_rank_ic_std=wf_ric.get("std"),
        scored_at=now or utc_now_iso())


def _first(series: pl.Series) -> float | None:
    value = series[0] if series.len() else None
    return None if value is None or math.isnan(value) else float(value)


def tracked_rows(history: History) -> list[Tracked]:
    """Every row of `tracked_predictions`, by decision date (empty without a database)."""
    if not history.path.exists():
        return []
    with history.connect() as conn:
        rows = conn.execute("SELECT * FROM tracked_predictions "
                            "ORDER BY decision_date, version").fetchall()
    return [Tracked(**dict(row)) for row in rows]


def _record(history: History, rows: list[Tracked]) -> None:
    if not rows:
        return
    names = list(asdict(rows[0]))
    with history.connect() as conn:
        conn.executemany(
            f"INSERT OR REPLACE INTO tracked_predictions ({', '.join(names)}) "
            f"VALUES ({', '.join('?' for _ in names)})",
            [tuple(asdict(r).values()) for r in rows])


def tracking_alerts(rows: list[Tracked], config: AuroraConfig,
                    newest: tuple[str, dict[str, Any]] | None = None) -> list[Alert]:
    """The `decay` alert of the module docstring over `rows` (sorted by decision date), and
    `probable_leakage` over `newest` (version, document), the newest published
    prediction."""
    out = []
    t = config.track
    recent = [r for r in rows[-t.window:] if r.rank_ic is not None]
    if len(recent) >= t.min_decisions:
        mean = sum(r.rank_ic for r in recent if r.rank_ic is not None) / len(recent)
        latest = recent[-1]
        wf, wf_std = latest.walk_forward_rank_ic, latest.walk_forward_rank_ic_std
        floor = (wf - t.k * wf_std * math.sqrt(latest.horizon / len(recent))
                 if wf is not None and wf_std is not None else None)
        if mean < 0 or (floor is not None and mean < floor):
            why = ("below zero" if mean < 0 else
                   f"below the walk-forward's {wf:+.4f} by more than {t.k:g} standard errors")
            out.append(Alert(
                "decay", "warning",
                f"the published predictions stopped working: realised rank IC "
                f"{mean:+.4f} over the last {len(recent)} decisions "
                f"(through {latest.decision_date}), {why}", "decay",
                {"mean_rank_ic": mean, "decisions": len(recent), "walk_forward": wf,
                 "floor": floor}))
    wf_newest = _walk_forward(newest[1]).get("mean") if newest is not None else None
    if newest is not None and wf_newest is not None and \
            wf_newest > config.predict.leakage_threshold:
        version, doc = newest
        out.append(Alert(
            "probable_leakage", "critical",
            f"predictions of {doc['decision_date']} were published with a walk-forward rank "
            f"IC of {wf_newest:+.4f}, above {config.predict.leakage_threshold}: more than "
            "daily equity signals deliver; check the features for lookahead",
            "probable_leakage", {"version": version}))
    return out


def model_name(doc: dict[str, Any]) -> str | None:
    """The name of the model a predictions.json ranks with (its `model.name`)."""
    model = doc.get("model")
    name = model.get("name") if isinstance(model, dict) else model
    return str(name) if name is not None else None


def _walk_forward(doc: dict[str, Any]) -> dict[str, Any]:
    """The walk-forward rank IC summary (mean, std, ...) a document was published with."""
    models = (doc.get("evaluation") or {}).get("models") or {}
    return (models.get(model_name(doc) or "") or {}).get("rank_ic") or {}


def track(store: Store, config: AuroraConfig, history: History,
          now: str | None = None) -> TrackReport:
    """Score what has become scorable, record it, and return the report with its alerts
    (module docstring). StoreError when the history database cannot be used."""
    done = {(row.decision_date, row.model) for row in tracked_rows(history)}
    every = published(store)
    waiting = [(v, doc) for v, doc in every
               if (str(doc["decision_date"]), model_name(doc)) not in done]
    new: list[Tracked] = []
    pending = 0
    if waiting:
        latest = store.current_version()
        assert latest is not None
        closes = load_adjusted_prices(store, latest).prices.select("symbol", "date", "close")
        for version, doc in waiting:
            row = score_prediction(version, doc, closes, quantiles=config.predict.quantiles,
                                   top_k=config.backtest.top_k, now=now)
            if row is None:
                pending += 1
            else:
                new.append(row)
    _record(history, new)
    rows = tracked_rows(history)
    alerts = tracking_alerts(rows, config, every[-1] if every else None)
    for rule in {"decay", "probable_leakage"} - {a.rule for a in alerts}:
        history.close_alerts(status="resolved", rule=rule)  # the condition cleared
    return TrackReport(new, pending, rows, alerts)
