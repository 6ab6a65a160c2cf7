"""One typed configuration: `aurora.toml` < environment variables < command-line flags.

Sources, lowest precedence first:
1. defaults in the models below;
2. a TOML file: `--config FILE`, else `$AURORA_CONFIG`, else `./aurora.toml` if it exists;
3. environment variables: `AURORA_DATA_DIR`, `AURORA_UNIVERSE`, the Alpaca SDK names
   `APCA_API_KEY_ID`, `APCA_API_SECRET_KEY`, `APCA_API_DATA_URL`, `AURORA_WEBHOOK_URL`,
   `AURORA_BACKUP_KEY`, and generically `AURORA_<SECTION>__<FIELD>` (e.g.
   `AURORA_FETCH__RATE_LIMIT_PER_MINUTE=150`);
4. flags passed by the CLI as `overrides` (dotted keys, e.g. `{"fetch.feed": "iex"}`).

Secrets (`SecretStr`) print as `**********`; `load_config` errors name the setting and the
source but never echo a secret's value.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from aurora.errors import ConfigError, CredentialsError

DEFAULT_DATA_URL = "https://data.alpaca.markets"
SECRET_FIELDS = {("alpaca", "key_id"), ("alpaca", "secret_key"), ("ops", "webhook_url"),
                 ("ops", "backup_key")}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AlpacaConfig(_Section):
    """Market-data credentials and endpoint (names as in Alpaca's own SDKs)."""

    key_id: SecretStr | None = None
    secret_key: SecretStr | None = None
    data_url: str = DEFAULT_DATA_URL

    @field_validator("data_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    def require_credentials(self) -> tuple[str, str]:
        """Both credentials, or CredentialsError naming the missing variables."""
        missing = [
            name
            for name, value in (("APCA_API_KEY_ID", self.key_id),
                                ("APCA_API_SECRET_KEY", self.secret_key))
            if value is None or not value.get_secret_value()
        ]
        if missing:
            raise CredentialsError(
                f"missing Alpaca credentials: set {' and '.join(missing)} "
                "(environment, or [alpaca] key_id/secret_key in aurora.toml)"
            )
        assert self.key_id is not None and self.secret_key is not None
        return self.key_id.get_secret_value(), self.secret_key.get_secret_value()


class FetchConfig(_Section):
    """How `aurora fetch` talks to the market-data API."""

    batch_size: int = Field(50, ge=1, le=1000)
    rate_limit_per_minute: int = Field(200, ge=1, le=100_000)
    max_retries: int = Field(6, ge=0, le=20)
    backoff_base_seconds: float = Field(0.5, gt=0, le=60)
    backoff_max_seconds: float = Field(60.0, gt=0, le=600)
    timeout_seconds: float = Field(30.0, gt=0, le=600)
    page_limit: int = Field(10_000, ge=1, le=10_000)
    concurrency: int = Field(1, ge=1, le=16)
    adjustment: Literal["raw", "split", "dividend", "all"] = "all"
    feed: Literal["iex", "sip"] = "sip"
    history_years: int = Field(2, ge=1, le=30)
    overlap_sessions: int = Field(5, ge=0, le=60)


class ValidationConfig(_Section):
    """Severity of each validation check: error blocks publication, warning is reported."""

    severities: dict[str, Literal["error", "warning", "ignore"]] = Field(default_factory=dict)
    max_move: float = Field(0.5, gt=0)
    stale_run_sessions: int = Field(5, ge=2)
    long_gap_sessions: int = Field(5, ge=2)


class BuildConfig(_Section):
    max_missing_fraction: float = Field(0.05, ge=0, le=1)
    min_dispersion: float = Field(1e-6, ge=0)


class PredictConfig(_Section):
    horizon: int = Field(5, ge=1, le=60)
    seed: int = 7
    train_sessions: int = Field(750, ge=60)
    embargo_sessions: int = Field(5, ge=0, le=60)
    min_train_sessions: int = Field(252, ge=20)
    test_sessions: int = Field(63, ge=5, le=504)
    quantiles: int = Field(5, ge=2, le=20)
    leakage_threshold: float = Field(0.1, gt=0, le=1)
    n_estimators: int = Field(100, ge=1, le=5000)
    learning_rate: float = Field(0.05, gt=0, le=1)
    num_leaves: int = Field(2, ge=2, le=255)
    min_data_in_leaf: int = Field(1000, ge=1)
    num_threads: int = Field(1, ge=1, le=64)
    ridge_alpha: float = Field(0.1, ge=0)


class OpsConfig(_Section):
    deadline: str = "16:00"
    deadline_timezone: str = "America/Chicago"
    slow_factor: float = Field(3.0, gt=1)
    webhook_url: SecretStr | None = None
    backup_key: SecretStr | None = None
    keep_versions: int = Field(20, ge=1)
    keep_days: int | None = Field(None, ge=1)


class AuroraConfig(_Section):
    """The whole configuration. Build it with `load_config`, pass it explicitly."""

    data_dir: Path = Path("data")
    universe: Path | None = None
    alpaca: AlpacaConfig = AlpacaConfig()
    fetch: FetchConfig = FetchConfig()
    validation: ValidationConfig = ValidationConfig()
    build: BuildConfig = BuildConfig()
    predict: PredictConfig = PredictConfig()
    ops: OpsConfig = OpsConfig()


_ENV_NAMES: dict[str, tuple[str, ...]] = {
    "AURORA_DATA_DIR": ("data_dir",),
    "AURORA_UNIVERSE": ("universe",),
    "APCA_API_KEY_ID": ("alpaca", "key_id"),
    "APCA_API_SECRET_KEY": ("alpaca", "secret_key"),
    "APCA_API_DATA_URL": ("alpaca", "data_url"),
    "AURORA_WEBHOOK_URL": ("ops", "webhook_url"),
    "AURORA_BACKUP_KEY": ("ops", "backup_key"),
}


def _set(tree: dict[str, Any], keys: tuple[str, ...], value: Any) -> None:
    node = tree
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"setting {'.'.join(keys)}: {key} is not a section")
        node = child
    node[keys[-1]] = value


def _from_env(env: Mapping[str, str]) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    tree: dict[str, Any] = {}
    origin: dict[tuple[str, ...], str] = {}
    for name, value in env.items():
        if name in _ENV_NAMES:
            keys = _ENV_NAMES[name]
        elif name.startswith("AURORA_") and "__" in name:
            keys = tuple(part.lower() for part in name[len("AURORA_"):].split("__"))
        else:
            continue
        _set(tree, keys, value)
        origin[keys] = f"environment variable {name}"
    return tree, origin


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def find_config_file(config_file: Path | None = None,
                     env: Mapping[str, str] | None = None) -> Path | None:
    """The TOML file `load_config` reads: `config_file`, else `$AURORA_CONFIG`, else
    `./aurora.toml` when it exists, else None."""
    env = os.environ if env is None else env
    if config_file is not None:
        return config_file
    if env.get("AURORA_CONFIG"):
        return Path(env["AURORA_CONFIG"])
    default = Path("aurora.toml")
    return default if default.exists() else None


def load_config(
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> AuroraConfig:
    """Merge file, environment and flag settings into an `AuroraConfig`.

    `overrides` maps dotted keys to values; None values are ignored (flag not given).
    Raises ConfigError with a one-line message naming the source and setting at fault.
    """
    env = os.environ if env is None else env
    tree: dict[str, Any] = {}
    origin: dict[tuple[str, ...], str] = {}
    path = find_config_file(config_file, env)
    if path is not None:
        try:
            file_tree = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: configuration file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
        tree = _merge(tree, file_tree)
        origin_file = str(path)
        for section, value in file_tree.items():
            if isinstance(value, dict):
                for key in value:
                    origin[(section, key)] = origin_file
            else:
                origin[(section,)] = origin_file
    env_tree, env_origin = _from_env(env)
    tree = _merge(tree, env_tree)
    origin.update(env_origin)
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        keys = tuple(dotted.split("."))
        _set(tree, keys, value)
        origin[keys] = "flag --" + keys[-1].replace("_", "-")
    try:
        return AuroraConfig.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origin)) from None


def _describe(exc: ValidationError, origin: Mapping[tuple[str, ...], str]) -> str:
    err = exc.errors()[0]
    keys = tuple(str(k) for k in err["loc"])
    where = origin.get(keys) or origin.get(keys[:1]) or "configuration"
    message = err["msg"]
    if err["type"] == "extra_forbidden":
        message = "unknown setting"
    # An unknown key may be a misspelt secret (`[alpaca] secret = ...`): never echo it, nor
    # any value of the sections that hold secrets.
    secret = keys[:2] in SECRET_FIELDS or keys[:1] in {(s,) for s, _ in SECRET_FIELDS}
    hidden = secret or err["type"] == "extra_forbidden" or "input" not in err
    shown = "" if hidden else f" (got {err['input']!r})"
    more = f"; {len(exc.errors()) - 1} more problem(s)" if len(exc.errors()) > 1 else ""
    return f"{where}: {'.'.join(keys)}: {message}{shown}{more}"
