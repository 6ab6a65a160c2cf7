"""Tracking of published predictions (`aurora.ops.tracking`) on hand-built stores."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from aurora import calendar
from aurora.atomic import atomic_write_json, atomic_write_parquet
from aurora.config import AuroraConfig, TrackConfig
from aurora.ops.history import History
from aurora.ops.tracking import score_prediction, track, tracked_rows, tracking_alerts
from aurora.store import Store, UniverseRecord

DAYS = calendar.sessions(dt.date(2024, 1, 2), dt.date(2024, 3, 28))
SYMBOLS = ["A", "B", "C", "D"]
GROWTH = {"A": 0.04, "B": 0.02, "C": -0.01, "D": -0.03}  # each symbol's return a session


def closes(days=DAYS) -> pl.DataFrame:
    rows = [(s, d, 100.0 * (1 + GROWTH[s]) ** i) for s in SYMBOLS for i, d in enumerate(days)]
    return pl.DataFrame(rows, schema={"symbol": pl.String, "date": pl.Date,
                                      "close": pl.Float64}, orient="row")


def doc(decision: dt.date, scores: dict[str, float], wf_rank_ic: float = 0.03) -> dict:
    return {"decision_date": decision.isoformat(), "horizon": 2, "model": {"name": "lightgbm"},
            "evaluation": {"models": {"lightgbm": {"rank_ic": {"mean": wf_rank_ic,
                                                               "std": 0.1}}}},
            "predictions": [{"symbol": s, "score": v} for s, v in scores.items()]
            + [{"symbol": "Z", "score": None, "reason": "no features"}]}


RIGHT = {"A": 4.0, "B": 3.0, "C": 2.0, "D": 1.0}
WRONG = {"A": 1.0, "B": 2.0, "C": 3.0, "D": 4.0}


def test_a_prediction_is_scored_against_the_close_horizon_sessions_later():
    row = score_prediction("v1", doc(DAYS[3], RIGHT), closes(), quantiles=2, top_k=1,
                           now="t")
    assert row is not None
    assert (row.decision_date, row.label_end) == (DAYS[3].isoformat(), DAYS[5].isoformat())
    assert row.names == 4 and row.rank_ic == pytest.approx(1.0)
    two = {s: (1 + g) ** 2 - 1 for s, g in GROWTH.items()}
    assert row.top_k_return == pytest.approx(two["A"])
    assert row.spread == pytest.approx((two["A"] + two["B"]) / 2 - (two["C"] + two["D"]) / 2)
    assert row.universe_return == pytest.approx(sum(two.values()) / 4)
    assert row.walk_forward_rank_ic == 0.03
    wrong = score_prediction("v2", doc(DAYS[3], WRONG), closes(), quantiles=2, top_k=1)
    assert wrong is not None and wrong.rank_ic == pytest.approx(-1.0)
    # the close two sessions after the last decision date is not stored yet
    assert score_prediction("v3", doc(DAYS[-2], RIGHT), closes(), quantiles=2,
                            top_k=1) is None


def _publish(store: Store, files: dict) -> str:
    with store.transaction("predict", base=store.current_version(),
                           universe=UniverseRecord(symbols=tuple(SYMBOLS), source="test")) as txn:
        for name, content in files.items():
            if isinstance(content, pl.DataFrame):
                atomic_write_parquet(txn.path(name), content)
            else:
                atomic_write_json(txn.path(name), content)
    version = store.current_version()
    assert version is not None
    return version


def _config(data_dir, **track) -> AuroraConfig:
    return AuroraConfig(data_dir=data_dir, track=TrackConfig(**{"min_decisions": 3, **track}))


def test_track_scores_each_published_prediction_once_and_alerts_on_decay(data_dir):
    store = Store(data_dir)
    bars = closes().with_columns(open=pl.col("close"), high=pl.col("close"),
                                 low=pl.col("close"), volume=pl.lit(1e6))
    _publish(store, {"prices.parquet": bars.filter(pl.col("date") <= DAYS[10])})
    _publish(store, {"predictions.json": doc(DAYS[2], RIGHT)})  # predict ran again for it:
    published = [_publish(store, {"predictions.json": doc(DAYS[i], WRONG)})  # the newest
                 for i in (2, 4, 6, 9)]                                     # counts, once
    _publish(store, {"sector_map.parquet": pl.DataFrame({"symbol": ["A"], "sector": ["X"]})})
    history = History(data_dir)
    first = track(store, _config(data_dir), history)
    # DAYS[9] + 2 sessions is not stored: it waits; the other three are scored
    assert [r.version for r in first.new] == published[:3] and first.pending == 1
    assert all(r.rank_ic == pytest.approx(-1.0) for r in first.rows)
    [alert] = first.alerts
    assert alert.rule == "decay" and "below zero" in alert.message
    assert "over the last 3 decisions" in alert.message
    # nothing new to score: nothing scored twice
    again = track(store, _config(data_dir), history)
    assert again.new == [] and len(tracked_rows(history)) == 3
    # the prices grow: the last one becomes scorable
    _publish(store, {"prices.parquet": bars})
    later = track(store, _config(data_dir), history)
    assert [r.version for r in later.new] == [published[3]] and later.pending == 0


def test_decay_below_the_walk_forward_and_probable_leakage():
    from aurora.ops.tracking import Tracked

    def row(i: int, ic: float, wf: float = 0.05) -> Tracked:
        return Tracked(f"v{i}", f"2024-01-{i + 10:02d}", 5, "x", "lightgbm", 50, ic, None,
                       20, None, None, wf, 0.1, "t")

    config = AuroraConfig(track=TrackConfig(window=4, min_decisions=4, k=2.0))
    # mean 0.01 over 4 decisions: the floor is 0.05 - 2 x 0.1 / 2 = -0.05: no alert
    assert tracking_alerts([row(i, 0.01) for i in range(4)], config) == []
    # too few decisions: no verdict
    assert tracking_alerts([row(i, -0.5) for i in range(3)], config) == []
    tight = AuroraConfig(track=TrackConfig(window=4, min_decisions=4, k=0.1))
    [decay] = tracking_alerts([row(i, 0.01) for i in range(4)], tight)
    assert "below the walk-forward's +0.0500 by more than 0.1 standard errors" in decay.message
    # the newest published prediction, not yet scored, is what leakage is judged on
    [leak] = tracking_alerts([row(0, 0.01)], config,
                             ("v9", doc(DAYS[40], RIGHT, wf_rank_ic=0.25)))
    assert leak.rule == "probable_leakage" and leak.severity == "critical"
    assert leak.key == "probable_leakage" and leak.details == {"version": "v9"}
    assert tracking_alerts([row(0, 0.01, wf=0.25)], config,
                           ("v9", doc(DAYS[40], RIGHT, wf_rank_ic=0.05))) == []


def test_cli_track_records_and_raises_through_the_alert_channel(data_dir, capsys):
    from aurora.cli.main import main

    store = Store(data_dir)
    bars = closes().with_columns(open=pl.col("close"), high=pl.col("close"),
                                 low=pl.col("close"), volume=pl.lit(1e6))
    _publish(store, {"prices.parquet": bars})
    for i in (2, 4, 6, 8, 10):
        _publish(store, {"predictions.json": doc(DAYS[i], WRONG, wf_rank_ic=0.3)})
    assert main(["track", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "tracked 5 newly scorable prediction(s); 5 scored in all, 0 waiting" in out
    assert "realised rank IC -1.0000 (walk-forward +0.3000)" in out
    rules = {a.rule for a in History(data_dir).alerts()}
    assert {"decay", "probable_leakage"} <= rules  # (and stale_data: 2024 prices)
    assert json.loads(json.dumps([r.__dict__ for r in tracked_rows(History(data_dir))]))
