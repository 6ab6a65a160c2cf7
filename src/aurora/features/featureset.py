"""Which features a build computes: the registry's 45, the intraday family when asked for,
and the user's.

`FeatureSet.configured(config)` reads `build.intraday` and `build.features`; `added` is
what a computation adds to the 45 (`compute_panel(extra=)`), in output-column order after
them: the intraday family, then the user's features. `hash` identifies the whole set (an
incremental build starts from the last one only when it is unchanged).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aurora.atomic import sha256_bytes, sha256_file
from aurora.config import AuroraConfig
from aurora.errors import ConfigError
from aurora.features.expr import Expr
from aurora.features.registry import FEATURE_NAMES, INTRADAY, MAX_LOOKBACK, REGISTRY, feature_set
from aurora.features.userfeatures import feature_set_hash, load_user_features
from aurora.intraday.daily import uses_intraday


@dataclass(frozen=True)
class FeatureSet:
    """The features a build computes: the registry's 45; with `intraday` the intraday
    family (`registry.INTRADAY`, from each day's minute bars); and user features (name ->
    expression) from `source` (`build.features`, `aurora build --features`)."""

    user: Mapping[str, Expr] = field(default_factory=dict)
    source: Path | None = None
    code: str = ""  # sha256 of a Python feature file: a custom function's body is not in repr
    intraday: bool = False

    @classmethod
    def configured(cls, config: AuroraConfig) -> FeatureSet:
        """The feature set of `config` (`build.features`, `build.intraday`). ConfigError
        for a user feature that reads an intraday field in a build without the intraday
        family (whose minutes would not be read), naming the file and the setting."""
        path = config.build.features
        intraday = config.build.intraday
        if path is None:
            return cls(intraday=intraday)
        user = load_user_features(path)
        reading = [name for name, expr in user.items() if uses_intraday(expr)]
        if reading and not intraday:
            raise ConfigError(f"{path}: {', '.join(reading)} read(s) intraday fields: build "
                              "with the intraday family (build.intraday = true, or aurora "
                              "build --intraday)")
        code = sha256_file(path) if Path(path).suffix.lower() == ".py" else ""
        return cls(user, path, code, intraday)

    @property
    def added(self) -> dict[str, Expr]:
        """The expressions added to the 45: the intraday family (when asked for), then the
        user's."""
        family = {f.name: f.expr for f in INTRADAY} if self.intraday else {}
        return {**family, **self.user}

    @property
    def hash(self) -> str:
        """The feature set's identity (features.meta.json `feature_set_hash`): its names and
        expressions, and the text of a Python feature file (editing a custom function's body
        changes it, so the next build is a full one)."""
        named = feature_set_hash(feature_set(self.added))
        return sha256_bytes(f"{named}\n{self.code}".encode())[:16] if self.code else named

    @property
    def names(self) -> list[str]:
        return [*FEATURE_NAMES, *self.added]

    @property
    def max_lookback(self) -> int:
        return max([MAX_LOOKBACK, *(e.lookback for e in self.added.values())])

    def describe(self) -> list[dict[str, Any]]:
        family = INTRADAY if self.intraday else ()
        return ([{"name": s.name, "family": s.family, "lookback": s.lookback,
                  "expression": repr(s.expr)} for s in (*REGISTRY, *family)]
                + [{"name": n, "family": "user", "lookback": e.lookback, "expression": repr(e)}
                   for n, e in self.user.items()])
