"""One typed configuration: `aurora.toml` < environment variables < command-line flags.

Sources, lowest precedence first:
1. defaults in the models below;
2. a TOML file: `--config FILE`, else `$AURORA_CONFIG`, else `./aurora.toml` if it exists;
3. environment variables: `AURORA_DATA_DIR`, `AURORA_UNIVERSE`, the Alpaca SDK names
   `APCA_API_KEY_ID`, `APCA_API_SECRET_KEY`, `APCA_API_DATA_URL`, `APCA_API_BASE_URL`,
   `AURORA_WEBHOOK_URL`, `AURORA_BACKUP_KEY`, and generically `AURORA_<SECTION>__<FIELD>` (e.g.
   `AURORA_FETCH__RATE_LIMIT_PER_MINUTE=150`);
4. flags passed by the CLI as `overrides` (dotted keys, e.g. `{"fetch.feed": "iex"}`).

Secrets (`SecretStr`) print as `**********`; `load_config` errors name the setting and the
source but never echo a secret's value. An empty path setting (data_dir, universe,
`$AURORA_CONFIG`) is a ConfigError, never the current directory; a configuration file that
cannot be read as UTF-8 TOML is one too. A relative `universe` or `[build] features` in the
TOML file is relative to that file's directory; from the environment or a flag, to the
working directory.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError, field_validator

from aurora.configsections import DEFAULT_BASE_URL as DEFAULT_BASE_URL  # re-exported
from aurora.configsections import DEFAULT_DATA_URL as DEFAULT_DATA_URL
from aurora.configsections import (
    AlpacaConfig,
    BacktestConfig,
    BuildConfig,
    ComputeConfig,
    FetchConfig,
    IntradayConfig,
    OpsConfig,
    PredictConfig,
    Section,
    StreamConfig,
    TrackConfig,
    ValidationConfig,
)
from aurora.errors import ConfigError

SECRET_FIELDS = {("alpaca", "key_id"), ("alpaca", "secret_key"), ("ops", "webhook_url"),
                 ("ops", "backup_key")}
# not secrets once valid, but a wrong value may carry credentials: never echoed in an error
_URL_FIELDS = {("compute", "exchange"), ("compute", "scheduler")}


class AuroraConfig(Section):
    """The whole configuration. Build it with `load_config`, pass it explicitly."""

    data_dir: Path = Path("data")
    universe: Path | None = None
    alpaca: AlpacaConfig = AlpacaConfig()
    fetch: FetchConfig = FetchConfig()
    intraday: IntradayConfig = IntradayConfig()
    stream: StreamConfig = StreamConfig()
    validation: ValidationConfig = ValidationConfig()
    build: BuildConfig = BuildConfig()
    predict: PredictConfig = PredictConfig()
    backtest: BacktestConfig = BacktestConfig()
    track: TrackConfig = TrackConfig()
    ops: OpsConfig = OpsConfig()
    compute: ComputeConfig = ComputeConfig()

    @field_validator("data_dir", "universe", mode="before")
    @classmethod
    def _not_empty(cls, value: Any) -> Any:
        # Path("") is the current directory: an empty setting must not silently mean it.
        if isinstance(value, str) and not value.strip():
            raise ValueError("is empty: set a path or leave the setting out")
        return value


_ENV_NAMES: dict[str, tuple[str, ...]] = {
    "AURORA_DATA_DIR": ("data_dir",),
    "AURORA_UNIVERSE": ("universe",),
    "APCA_API_KEY_ID": ("alpaca", "key_id"),
    "APCA_API_SECRET_KEY": ("alpaca", "secret_key"),
    "APCA_API_DATA_URL": ("alpaca", "data_url"),
    "APCA_API_BASE_URL": ("alpaca", "base_url"),
    "AURORA_WEBHOOK_URL": ("ops", "webhook_url"),
    "AURORA_BACKUP_KEY": ("ops", "backup_key"),
    "AURORA_SCHEDULER": ("compute", "scheduler"),
    "AURORA_STREAM_URL": ("stream", "url"),
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
    `./aurora.toml` when it exists, else None. ConfigError when `$AURORA_CONFIG` is set
    but empty."""
    env = os.environ if env is None else env
    if config_file is not None:
        return config_file
    if "AURORA_CONFIG" in env:
        if not env["AURORA_CONFIG"].strip():
            raise ConfigError("environment variable AURORA_CONFIG is empty: set a TOML file "
                              "or leave it unset")
        return Path(env["AURORA_CONFIG"])
    default = Path("aurora.toml")
    return default if default.exists() else None


# Settings that change what a store holds for one run only: a file or an environment variable
# would apply them to every run (discarding history daily, or marking real prices synthetic).
ONE_OFF_SETTINGS: tuple[tuple[str, ...], ...] = (("fetch", "new_history"), ("fetch", "synthetic"))


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
        file_tree = _read_toml(path)
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
    for keys in ONE_OFF_SETTINGS:
        if keys in origin:
            raise ConfigError(f"{origin[keys]}: {'.'.join(keys)}: can only be asked for once, "
                              f"on the command line (--{keys[-1].replace('_', '-')}), not kept "
                              "in a file or the environment")
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


def _read_toml(path: Path) -> dict[str, Any]:
    """The settings of TOML file `path`; ConfigError naming it when it is missing, not a
    readable UTF-8 text file or not TOML. A relative `universe` in it is made relative to
    the file's directory (flags and environment variables stay relative to the working
    directory)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a configuration file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a TOML text file (not UTF-8: {exc.reason} at byte "
                          f"{exc.start})") from None
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
        raise ConfigError(f"{path}: configuration file cannot be read ({reason})") from None
    try:
        tree = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    universe = tree.get("universe")
    if isinstance(universe, str) and universe.strip():
        relative = Path(universe).expanduser()
        if not relative.is_absolute():
            tree["universe"] = str(path.parent / relative)
    build = tree.get("build")
    features = build.get("features") if isinstance(build, dict) else None
    if isinstance(features, str) and features.strip():
        relative = Path(features).expanduser()
        if not relative.is_absolute():
            build["features"] = str(path.parent / relative)  # type: ignore[index]
    return tree


def _describe(exc: ValidationError, origin: Mapping[tuple[str, ...], str]) -> str:
    err = exc.errors()[0]
    keys = tuple(str(k) for k in err["loc"])
    where = origin.get(keys) or origin.get(keys[:1]) or "configuration"
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = "unknown setting"
    # An unknown key may be a misspelt secret (`[alpaca] secret = ...`): never echo it, nor
    # any value of the sections that hold secrets.
    secret = (keys[:2] in SECRET_FIELDS | _URL_FIELDS
              or keys[:1] in {(s,) for s, _ in SECRET_FIELDS})
    hidden = secret or err["type"] == "extra_forbidden" or "input" not in err
    shown = "" if hidden else f" (got {err['input']!r})"
    more = f"; {len(exc.errors()) - 1} more problem(s)" if len(exc.errors()) > 1 else ""
    return f"{where}: {'.'.join(keys)}: {message}{shown}{more}"
