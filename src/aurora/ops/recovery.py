"""Recovery drills.

`drill` is the recovery test a team schedules: restore the latest backup into a scratch
directory, verify every checksum, validate it, and rebuild the features from the restored
prices (a full build); the rebuilt features are compared with the backed-up ones: identical,
or equal to 1e-9 relative when those were built incrementally (running sums restarted at a
tail differ in their last bits), when the build code has not changed since the backup.
Validation and rebuild use the universe recorded in the restored version (the configured
universe is not applied).

A drill passes only when a version was restored and verified: a backup that is refused (an
unsafe name, a manifest that disagrees with `backup.json`, a missing or corrupt blob, a
wrong key) or cannot be reached fails the drill with the reason as its problem.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from aurora.config import AuroraConfig
from aurora.errors import AuroraError, ConfigError
from aurora.features.builder import build_features
from aurora.ops.backup import restore_version
from aurora.redaction import redact_url
from aurora.store import Store
from aurora.store.datasets import has_dataset, read_features
from aurora.store.files import FEATURES, FEATURES_DATASET
from aurora.validation import validate_store


@dataclass
class DrillReport:
    url: str
    version: str | None  # None: nothing was restored (see `problems`)
    scratch: str
    files_verified: int = 0
    problems: list[str] = field(default_factory=list)
    validation_ok: bool | None = None
    rebuild_seconds: float | None = None
    features_match: str | None = None  # "identical", "within 1e-9" or "different"
    restore_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.version is not None and not self.problems and \
            self.validation_ok is not False and self.rebuild_seconds is not None

    def summary_lines(self) -> list[str]:
        status = "PASSED" if self.ok else "FAILED"
        if self.version is None:
            lines = [f"drill {status}: nothing restored from {self.url}"]
            return lines + [f"  problem: {p}" for p in self.problems]
        lines = [f"drill {status}: restored {self.version} from {self.url} "
                 f"in {self.restore_seconds:.1f}s, {self.files_verified} file(s) verified"]
        if self.validation_ok is not None:
            lines.append(f"  validation: {'passed' if self.validation_ok else 'FAILED'}")
        if self.rebuild_seconds is not None:
            match = {"identical": "identical to the backed-up features",
                     "within 1e-9": "equal to the backed-up features within 1e-9 relative",
                     "different": "DIFFERENT from the backed-up features (build code "
                                  "changed?)",
                     None: "no features in the backup to compare"}[self.features_match]
            lines.append(f"  rebuilt features in {self.rebuild_seconds:.1f}s: {match}")
        lines += [f"  problem: {p}" for p in self.problems]
        return lines


def _default_validate(store: Store, config: AuroraConfig) -> tuple[bool, list[str]]:
    report = validate_store(store, config)
    return bool(report.ok), [e.line() for e in report.errors]


def _default_rebuild(store: Store, config: AuroraConfig) -> Any:
    return build_features(store, config, incremental=False)


def drill(url: str, config: AuroraConfig, *, key: str | None = None,
          storage_options: Mapping[str, Any] | None = None, scratch: Path | None = None,
          keep_scratch: bool = False,
          validate: Callable[[Store, AuroraConfig], tuple[bool, list[str]]] | None = None,
          rebuild: Callable[[Store, AuroraConfig], Any] | None = None) -> DrillReport:
    """Restore the latest backup at `url` into a scratch store, verify, validate, rebuild.

    Never touches `config.data_dir`. Problems are reported in the result, not raised: a
    backup that cannot be reached, is refused or does not restore gives a failed report
    (`ok` False, `version` None) whose problem is the one-line reason. A given `scratch`
    must be new or empty (ConfigError otherwise): the drill removes it when it ends.
    """
    validate = validate or _default_validate
    rebuild = rebuild or _default_rebuild
    if scratch is not None and Path(scratch).exists() and (
            not Path(scratch).is_dir() or any(Path(scratch).iterdir())):
        raise ConfigError(f"scratch directory {scratch} is not empty: the drill removes its "
                          "scratch when it ends, so give it a new or empty one")
    root = Path(scratch) if scratch else Path(tempfile.mkdtemp(prefix="aurora-drill-"))
    store = Store(root / "data")
    scratch_config = config.model_copy(update={"data_dir": store.root, "universe": None})
    t0 = time.perf_counter()
    try:
        try:
            restored = restore_version(store, url, key=key, storage_options=storage_options)
        except AuroraError as exc:
            failed = DrillReport(redact_url(url, keep_path=True), None, str(root),
                                 restore_seconds=time.perf_counter() - t0)
            failed.problems.append(f"restore failed: {exc}")
            return failed
        report = DrillReport(restored.url, restored.version, str(root),
                             files_verified=restored.files_verified,
                             restore_seconds=time.perf_counter() - t0)
        report.problems += store.verify()
        ok, errors = validate(store, scratch_config)
        report.validation_ok = ok
        report.problems += [f"validation: {e}" for e in errors[:5]]
        before = _features_or_none(store)
        t1 = time.perf_counter()
        try:
            rebuild(store, scratch_config)
        except Exception as exc:
            report.problems.append(f"rebuild failed: {type(exc).__name__}: {exc}")
            return report
        report.rebuild_seconds = time.perf_counter() - t1
        rebuilt = _features_or_none(store)
        if before is not None and rebuilt is not None:
            report.features_match = compare_features(before, rebuilt)
        return report
    finally:
        if not keep_scratch:
            shutil.rmtree(root, ignore_errors=True)


def _features_or_none(store: Store) -> pl.DataFrame | None:
    """The latest version's features, or None when it holds none."""
    manifest = store.manifest()
    if not has_dataset(manifest, FEATURES_DATASET, legacy=FEATURES):
        return None
    return read_features(store)


def compare_features(before: pl.DataFrame, after: pl.DataFrame, rtol: float = 1e-9) -> str:
    """"identical"; "within 1e-9" when the rows and missing cells are the same and every
    value is within `rtol` relative (or `rtol` of the feature's standard deviation, for a
    value near zero after a cancellation); else "different"."""
    if before.equals(after):
        return "identical"
    if before.columns != after.columns or not before.select("symbol", "date").equals(
            after.select("symbol", "date")):
        return "different"
    for name in before.columns[2:]:
        x, y = before[name].to_numpy(), after[name].to_numpy()
        if not np.array_equal(np.isnan(x), np.isnan(y)):
            return "different"
        scale = float(np.nanstd(x)) if np.isfinite(x).any() else 0.0
        if not np.allclose(y, x, rtol=rtol, atol=rtol * scale, equal_nan=True):
            return "different"
    return "within 1e-9"
