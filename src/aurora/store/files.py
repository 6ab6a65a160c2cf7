"""The names of the files a store version holds: one home for each, so no stage spells one.

Each name is a plain file inside `archive/<version>/`, or a part of a partitioned dataset
(`features/year=2018/part-0.parquet`, `aurora.store.datasets`); `manifest.json` lists every
one with its sha256 (see `aurora.store.manifest`).
"""

from __future__ import annotations

import re

from aurora.errors import StoreError

MANIFEST = "manifest.json"

PRICES_DATASET = "prices"  # raw daily bars (`aurora.schemas.PRICES_SCHEMA`), parts by year
PRICES_INDEX = "prices.index.json"  # the prices' metadata and parts (`aurora.store.bars`)
PRICES = "prices.parquet"  # the bars as one file: versions written before datasets
CORPORATE_ACTIONS = "corporate_actions.parquet"  # `aurora.schemas.CORPORATE_ACTIONS_SCHEMA`
SECTOR_MAP = "sector_map.parquet"  # symbol, sector
FUNDAMENTALS = "fundamentals.parquet"  # symbol, as_of, market_cap, shares_outstanding, ...
UNIVERSE = "universe.txt"  # the fetch universe, one symbol a line
VALIDATION = "validation.json"  # the fetch's validation report
FETCH_REPORT = "fetch_report.json"  # the fetch's counters and warnings
FEATURES_DATASET = "features"  # date, symbol, f_* (Float64): parts by year (store.datasets)
FEATURES = "features.parquet"  # the same as one file: versions written before datasets
FEATURES_META = "features.meta.json"  # what the build did, gates, inputs' sha256
FEATURES_SUMMARY = "features.summary.parquet"  # the gates' summary by year (features.gatestats)
# What a build writes: a version whose prices it was not built from holds none of them
FEATURE_FILES = (FEATURES, FEATURES_DATASET, FEATURES_META, FEATURES_SUMMARY)
PREDICTIONS = "predictions.json"  # the ranked universe, schema predictions.schema.json
EVALUATION = "evaluation.json"  # the walk-forward evaluation
WALK_FORWARD = "walk_forward.parquet"  # its out-of-sample scores: model, date, symbol, ...
PREDICTIONS_PRECLOSE = "predictions-preclose.json"  # the ranking as of the cut, plus as_of
EVALUATION_PRECLOSE = "evaluation_preclose.json"  # the pre-close variant's walk-forward
REPORT = "report.html"  # the self-contained report of a version (aurora.report)
# Files that describe the version that wrote them: a later version does not inherit them,
# so `latest/report.html` never describes an older version than `latest`.
NOT_INHERITED = frozenset({REPORT})
BACKTEST = "backtest.json"  # the cost-aware backtest of the walk-forward's scores
QUARANTINE = "quarantine.json"  # symbols the fetch quarantined, and releases (aurora.quarantine)

_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,199}")  # fullmatch: no trailing "\n"


def plain_name(name: object, what: str) -> str:
    """`name` when it is a plain file or version name: letters, digits, `_`, `-`, `.`, not
    starting with `.`, at most 200 characters, so it can only name an entry directly inside
    its directory. StoreError naming `what` (e.g. "file name in backup.json") otherwise."""
    if not isinstance(name, str) or not _PLAIN.fullmatch(name) or name in (".", ".."):
        raise StoreError(f"unsafe {what} {name!r}: a plain name is required (no path "
                         "separators, no leading dot)")
    return name


_DATASET = re.compile(r"[a-z][a-z0-9_]{0,63}")  # never a file's name: no dot
_PARTITION_DIR = re.compile(r"[a-z][a-z0-9_]{0,30}=[0-9A-Za-z_\-]{1,40}")  # hive: key=value


def store_name(name: object, what: str) -> str:
    """`name` when it names a file inside a version: a `plain_name`, or a dataset's part
    `<dataset>/<key>=<value>/<file>` (`features/year=2018/part-0.parquet`) whose dataset is
    lower-case letters, digits and _ (so never a file's name, such as `manifest.json`) and
    whose file is a plain name. StoreError naming `what` otherwise (an absolute path, "..", a
    leading dot, any other nesting)."""
    if not isinstance(name, str) or "/" not in name:
        return plain_name(name, what)
    parts = name.split("/")
    if len(parts) != 3 or not _PARTITION_DIR.fullmatch(parts[1]):
        raise StoreError(f"unsafe {what} {name!r}: a plain name, or a dataset part "
                         "<dataset>/<key>=<value>/<file>, is required")
    if not _DATASET.fullmatch(parts[0]):
        raise StoreError(f"unsafe {what} {name!r}: a dataset name is lower-case letters, "
                         "digits and _ (no dot)")
    plain_name(parts[2], what)
    return name
