"""Align features with labels and cut point-in-time training windows.

The panel joins the feature rows (date t, symbol, f_* columns) with the labels of
`labels.forward_returns`: one row per feature row, the label null where it is unknown.

Training cut for a model whose inputs end at the close of session `c` (the feature date of
the decision, or the first feature date of a walk-forward test block):

    label_end_session <= c - horizon - embargo          (purge = horizon, then an embargo)

so every training label was fully known `horizon + embargo` sessions before `c`, and the
last feature date allowed is `c - 2 * horizon - embargo - 1`. Of the allowed feature dates,
the latest `train_sessions` sessions form the (rolling) training window.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from aurora.errors import DataValidationError
from aurora.predict.labels import SessionClock, attach_sessions, forward_returns
from aurora.schemas import require_unique_keys

FEATURE_PREFIX = "f_"
ZSCORE_CLIP = 5.0


def feature_columns(features: pl.DataFrame, source: str = "features.parquet") -> list[str]:
    """The `f_*` columns of a feature panel, in file order.

    Raises DataValidationError when `date`/`symbol` are missing, no `f_*` column exists, a
    feature column is not numeric, or a (symbol, date) key is duplicated.
    """
    for col in ("date", "symbol"):
        if col not in features.columns:
            raise DataValidationError(f"{source}: missing column {col!r}")
    names = [c for c in features.columns if c.startswith(FEATURE_PREFIX)]
    if not names:
        raise DataValidationError(f"{source}: no feature columns (names starting with 'f_')")
    for name in names:
        if not features.schema[name].is_numeric():
            raise DataValidationError(
                f"{source}: feature column {name!r} is {features.schema[name]}, not numeric"
            )
    require_unique_keys(features.select("symbol", "date"), source)
    return names


def zscore_by_date(
    frame: pl.DataFrame, columns: list[str], clip: float = ZSCORE_CLIP
) -> pl.DataFrame:
    """Replace each column by its cross-sectional z-score per date, clipped to +-`clip`.

    Nulls and NaNs stay null; a date where a column has no dispersion gives 0.0 for its
    non-null values. Uses only same-date values, so it is point-in-time safe.
    """
    exprs = []
    for name in columns:
        x = pl.col(name).cast(pl.Float64).fill_nan(None)
        mean = x.mean().over("date")
        std = x.std(ddof=0).over("date")
        z = pl.when(std > 0).then((x - mean) / std).otherwise(pl.when(x.is_not_null()).then(0.0))
        exprs.append(z.clip(-clip, clip).alias(name))
    return frame.with_columns(exprs)


@dataclass(frozen=True)
class Panel:
    """Features aligned with labels.

    `frame` columns: date, symbol, session, decision_date, label_end, label_end_session,
    fwd_return (raw label), target (label z-scored by date), and the feature columns
    (z-scored by date). Sorted by date, then symbol.
    """

    frame: pl.DataFrame
    features: list[str]
    horizon: int
    clock: SessionClock


def build_panel(features: pl.DataFrame, prices: pl.DataFrame, horizon: int) -> Panel:
    """Join a feature panel with its labels (see module docstring). Labels come from
    `prices.close`; a feature row without a price row gets a null label."""
    names = feature_columns(features)
    if features.height == 0:
        raise DataValidationError("features.parquet: no rows")
    dates = pl.concat([features["date"], prices["date"]])
    first, last = dates.min(), dates.max()
    clock = SessionClock.covering(first, last, horizon + 2)
    labels = forward_returns(prices, horizon, clock)
    feats = attach_sessions(
        features.select("date", "symbol", *names), clock, "features.parquet"
    )
    frame = feats.join(
        labels.select("date", "symbol", "fwd_return"), on=["date", "symbol"], how="left"
    ).with_columns(label_end_session=pl.col("session") + 1 + horizon)
    days = clock.frame()
    frame = frame.join(
        days.rename({"date": "decision_date"}).with_columns(session=pl.col("session") - 1),
        on="session", how="left",
    ).join(
        days.rename({"date": "label_end", "session": "label_end_session"}),
        on="label_end_session", how="left",
    )
    frame = frame.with_columns(target=pl.col("fwd_return"))
    frame = zscore_by_date(frame, ["target"], clip=ZSCORE_CLIP)
    frame = zscore_by_date(frame, names)
    frame = frame.select(
        "date", "symbol", "session", "decision_date", "label_end", "label_end_session",
        "fwd_return", "target", *names,
    ).sort("date", "symbol")
    return Panel(frame, names, horizon, clock)


def last_trainable_session(cutoff_session: int, horizon: int, embargo: int) -> int:
    """The last feature-date session whose label may train a model cut at `cutoff_session`."""
    return cutoff_session - 2 * horizon - embargo - 1


def training_rows(
    panel: Panel, cutoff_session: int, *, embargo: int, train_sessions: int
) -> pl.DataFrame:
    """Labelled rows allowed for a model whose inputs end at the close of `cutoff_session`:
    `label_end_session <= cutoff - horizon - embargo`, feature date within the last
    `train_sessions` allowed sessions. Sorted by date, then symbol."""
    last = last_trainable_session(cutoff_session, panel.horizon, embargo)
    first = last - train_sessions + 1
    return panel.frame.filter(
        pl.col("session").is_between(first, last)
        & (pl.col("label_end_session") <= cutoff_session - panel.horizon - embargo)
        & pl.col("target").is_not_null()
    )
