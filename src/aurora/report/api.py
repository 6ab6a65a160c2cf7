"""`report`: one self-contained HTML page describing one store version.

1. `load_inputs` reads what the version holds, every file checked against its manifest:
   the raw bars (coverage), validation.json, the features, predictions.json,
   evaluation.json and its out-of-sample scores (walk_forward.parquet), backtest.json,
   the sector map, the adjusted closes (labels by horizon), and the tracked predictions of
   the store's run history. What the version lacks becomes a sentence in its section.
2. `render_report` turns them into the sections of `aurora.report.sections` and one page
   (`aurora.report.page`).
3. `report` publishes the page as report.html in a new version over the latest one when
   the version reported is the latest, and writes a copy to `out` when given (atomically:
   a failed run leaves the previous file). An older version's report goes to `out` only:
   publishing over it would undo the versions after it.
Nothing here prints.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from aurora.adjusted import load_adjusted_prices
from aurora.atomic import atomic_write_text
from aurora.config import AuroraConfig
from aurora.errors import StoreError
from aurora.ops.history import History
from aurora.ops.tracking import tracked_rows
from aurora.progress import Progress
from aurora.report import sections
from aurora.report.page import render
from aurora.report.sections import HEALTH_YEARS, ReportInputs
from aurora.store import Store
from aurora.store.bars import read_prices
from aurora.store.datasets import dataset_digest, read_features
from aurora.store.files import (
    BACKTEST,
    EVALUATION,
    FEATURES,
    FEATURES_DATASET,
    PREDICTIONS,
    REPORT,
    SECTOR_MAP,
    VALIDATION,
    WALK_FORWARD,
)

SECTIONS = "report sections"


@dataclass(frozen=True)
class ReportResult:
    """`html`: the page; `of_version`: the version described; `version`: the version
    that holds report.html (None when only `out` was written); `out`: the copy written;
    `charts`: how many charts the page holds."""

    html: str
    of_version: str
    version: str | None
    out: Path | None
    charts: int

    def summary_lines(self) -> list[str]:
        """What a person reads after `aurora report` (no printing here)."""
        size = len(self.html.encode()) / 1e6
        lines = [f"report of version {self.of_version}: {self.charts} charts, {size:.1f} MB, "
                 "self-contained (opens offline)"]
        if self.version is not None:
            lines.append(f"wrote {REPORT} in version {self.version}")
        if self.out is not None:
            lines.append(f"wrote {self.out}")
        return lines


def _json(store: Store, name: str, version: str) -> dict[str, Any] | None:
    path = store.verified_path(name, version)
    if path is None:
        return None
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreError(f"{path}: unreadable ({exc})") from exc
    return body if isinstance(body, dict) else None


def _parquet(store: Store, name: str, version: str) -> pl.DataFrame | None:
    path = store.verified_path(name, version)
    return None if path is None else pl.read_parquet(path)


def load_inputs(store: Store, version: str | None = None) -> ReportInputs:
    """What the report reads from `version` (default: the latest); StoreError when the
    store is empty, the version does not exist or a file does not match its manifest."""
    version = version or store.current_version()
    if version is None:
        raise StoreError(f"{store.root}: the store holds no version yet; run `aurora fetch`")
    manifest = store.manifest(version)
    has_prices = manifest.prices_entry() is not None
    bars = (read_prices(store, version).select("date", "symbol") if has_prices
            else pl.DataFrame(schema={"date": pl.Date, "symbol": pl.String}))
    predictions = _json(store, PREDICTIONS, version)
    has_features = dataset_digest(manifest, FEATURES_DATASET, legacy=FEATURES) is not None
    features = None
    if has_features:  # bounded: the training window and HEALTH_YEARS, not all history
        start = None
        if bars.height:
            start = bars["date"].max() - dt.timedelta(days=round(365.25 * HEALTH_YEARS))
            window = sections.training_window(predictions)
            start = min(start, window[0]) if window else start
        features = read_features(store, version, start=start)
    inputs = ReportInputs(
        version=version, manifest=manifest, bars=bars,
        prices=load_adjusted_prices(store, version).prices.select("date", "symbol", "close")
        if has_prices else None,
        validation=_json(store, VALIDATION, version), features=features,
        predictions=predictions,
        evaluation=_json(store, EVALUATION, version),
        walk_forward=_parquet(store, WALK_FORWARD, version),
        backtest=_json(store, BACKTEST, version), sectors=_parquet(store, SECTOR_MAP, version))
    prices_entry = manifest.prices_entry()
    inputs.inputs_sha256 = {
        "prices": prices_entry.sha256 if prices_entry is not None else None,
        "features": dataset_digest(manifest, FEATURES_DATASET, legacy=FEATURES)}
    try:
        inputs.tracked = tracked_rows(History(store.root))
    except StoreError as exc:
        inputs.tracking_problem = str(exc)
    return inputs


def render_report(inputs: ReportInputs, config: AuroraConfig,
                  progress: Progress | None = None) -> tuple[str, int]:
    """The page of `inputs` and its number of charts."""
    builders = [
        lambda: sections.run_and_data(inputs),
        lambda: sections.names(inputs),
        lambda: sections.model(inputs, config.predict.quantiles),
        lambda: sections.backtest(inputs),
        lambda: sections.tracking(inputs, config.track.window),
        lambda: sections.feature_health(inputs),
    ]
    built = []
    for done, build in enumerate(builders, start=1):
        built.append(build())
        if progress is not None:
            progress(SECTIONS, done, len(builders))
    charts = sum(1 for s in built for b in s.blocks if hasattr(b, "to_html"))
    subtitle = f"store version {inputs.version} · {inputs.manifest.stage} · " \
               f"{inputs.manifest.created_at:%Y-%m-%d %H:%M} UTC"
    return render("Aurora report", subtitle, built), charts


def report(store: Store, config: AuroraConfig, *, version: str | None = None,
           out: Path | None = None, progress: Progress | None = None) -> ReportResult:
    """The report of `version` (default: the latest), published and/or written to `out`
    (module docstring). StoreError as `load_inputs`, or when an older version is asked
    for without `out`."""
    latest = store.current_version()
    of_version = version or latest
    if of_version is None:
        raise StoreError(f"{store.root}: the store holds no version yet; run `aurora fetch`")
    if of_version != latest and out is None:
        raise StoreError(f"version {of_version} is not the latest ({latest}): its report "
                         "cannot be published into the store; give --out FILE")
    html, charts = render_report(load_inputs(store, of_version), config, progress)
    published = None
    if of_version == latest:
        with store.transaction("report", base=latest, params={"of_version": of_version}
                               ) as txn:
            atomic_write_text(txn.path(REPORT), html)
            txn.describe(REPORT, of_version=of_version, charts=charts)
        published = store.current_version()
    if out is not None:
        atomic_write_text(out, html)
    return ReportResult(html, of_version, published, out, charts)
