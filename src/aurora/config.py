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

import datetime as dt
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from aurora.errors import ConfigError, CredentialsError

DEFAULT_DATA_URL = "https://data.alpaca.markets"
DEFAULT_BASE_URL = "https://api.alpaca.markets"  # the trading API (assets)
SECRET_FIELDS = {("alpaca", "key_id"), ("alpaca", "secret_key"), ("ops", "webhook_url"),
                 ("ops", "backup_key")}
# not secrets once valid, but a wrong value may carry credentials: never echoed in an error
_URL_FIELDS = {("compute", "exchange"), ("compute", "scheduler")}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AlpacaConfig(_Section):
    """Alpaca credentials and endpoints (names as in Alpaca's own SDKs): `data_url` serves
    the market data (bars, corporate actions), `base_url` the trading API (`/v2/assets`;
    paper-trading keys need `https://paper-api.alpaca.markets`)."""

    key_id: SecretStr | None = None
    secret_key: SecretStr | None = None
    data_url: str = DEFAULT_DATA_URL
    base_url: str = DEFAULT_BASE_URL

    @field_validator("data_url", "base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    def require_credentials(self) -> tuple[str, str]:
        """Both credentials, or CredentialsError naming the missing variables, or the one
        with leading/trailing whitespace, a control or non-ASCII character (never its value)."""
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
        from aurora.credentials import credential_problem  # checked before any request

        for name, secret in (("APCA_API_KEY_ID", self.key_id),
                             ("APCA_API_SECRET_KEY", self.secret_key)):
            problem = credential_problem(secret.get_secret_value())
            if problem:
                raise CredentialsError(f"{name} {problem}: correct it where it is set "
                                       "(environment, or [alpaca] in aurora.toml)")
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
    # the store keeps raw bars; Aurora adjusts them point in time (aurora.adjusted)
    adjustment: Literal["raw"] = "raw"
    feed: Literal["iex", "sip"] = "sip"
    history_years: int = Field(2, ge=1, le=30)
    overlap_sessions: int = Field(5, ge=0, le=60)
    # the most one request group (one batch: every page, retry and wait) may take
    request_group_deadline_seconds: float = Field(600.0, gt=0, le=86_400)
    # the most one request (one page, all its attempts) may wait on the rate limit in all
    max_rate_limit_wait_seconds: float = Field(300.0, gt=0, le=3600)
    # every stored symbol's whole history is re-read once per this many fetches (0: never)
    reconcile_cycle_runs: int = Field(20, ge=0, le=10_000)
    # a fetch still going after this many seconds stops scheduling requests and fails
    deadline_seconds: float = Field(10_800.0, gt=0, le=7 * 86_400)
    # ignore the stored prices (even from another source) and fetch everything again
    new_history: bool = False
    # the prices are the test bed's synthetic market (set by `aurora demo`, never by users)
    synthetic: bool = False
    # the most symbols of the universe (a fraction) the fetch may quarantine and still publish
    max_quarantine_share: float = Field(0.05, ge=0, le=1)

    @field_validator("adjustment", mode="before")
    @classmethod
    def _raw_only(cls, value: object) -> object:
        if value != "raw":
            raise ValueError("Aurora stores raw bars and adjusts them point in time itself; "
                             "remove this setting (only 'raw' is accepted)")
        return value


class IntradayConfig(_Section):
    """`aurora fetch --timeframe 1Min|5Min|...`: the window, request sizing and validation."""

    # with nothing stored: how many sessions back to the last completed one to fetch
    history_sessions: int = Field(20, ge=1, le=5_000)
    # sessions re-fetched before the stored last day (late corrections)
    overlap_sessions: int = Field(1, ge=0, le=20)
    # the most bars one request group may ask for: bounds the fetch's memory (a month of
    # 1-minute bars of 50 symbols is about 400,000)
    bars_per_request: int = Field(500_000, ge=10_000, le=10_000_000)
    # a day's regular-session bars against its daily bar: relative tolerance of the open,
    # high, low and close, and of the volume
    price_tolerance: float = Field(0.01, ge=0, le=1)
    volume_tolerance: float = Field(0.10, ge=0, le=1)
    # the longest run of regular-session minutes without a bar that is not reported
    max_gap_minutes: int = Field(30, ge=1, le=390)


class StreamConfig(_Section):
    """`aurora stream`: Alpaca's market-data WebSocket during a session."""

    # `{feed}` becomes `fetch.feed` (iex or sip)
    url: str = "wss://stream.data.alpaca.markets/v2/{feed}"
    use_msgpack: bool = True
    # an open socket silent this long is reconnected, with one alert per silent spell
    watchdog_seconds: float = Field(120.0, gt=0, le=3600)
    # a symbol that traded today and then sent nothing this long (minutes of the regular
    # session) while others did is resubscribed, its minutes filled over REST, and alerted
    symbol_silence_minutes: float = Field(15.0, gt=0, le=390)
    backoff_base_seconds: float = Field(0.5, gt=0, le=60)
    backoff_max_seconds: float = Field(30.0, gt=0, le=600)
    # New York times: the pre-close prediction, and the end of the session's stream
    cut_time: dt.time = dt.time(15, 45)
    # a live stream waits this long after the cut for the last minute's bars, then fills
    # whatever minute before the cut it still lacks over REST
    cut_grace_seconds: float = Field(10.0, ge=0, le=120)
    end_time: dt.time = dt.time(16, 5)

    @field_validator("url")
    @classmethod
    def _ws(cls, value: str) -> str:
        if not value.startswith(("ws://", "wss://")):
            raise ValueError("must start with ws:// or wss://")
        return value.rstrip("/")


class ValidationConfig(_Section):
    """Severity of each validation check: error blocks publication, warning is reported."""

    severities: dict[str, Literal["error", "warning", "ignore"]] = Field(default_factory=dict)
    max_move: float = Field(0.5, gt=0)
    stale_run_sessions: int = Field(5, ge=2)
    long_gap_sessions: int = Field(5, ge=2)


class BuildConfig(_Section):
    max_missing_fraction: float = Field(0.05, ge=0, le=1)
    min_dispersion: float = Field(1e-6, ge=0)
    # user features added to the 45 (TOML or Python file, docs/user-features.md)
    features: Path | None = None
    # the intraday family (docs/intraday.md): features from each day's minute bars, stored
    # by `aurora fetch --timeframe` in this timeframe (1Min or 5Min)
    intraday: bool = False
    intraday_timeframe: Literal["1Min", "5Min"] = "1Min"

    @field_validator("features")
    @classmethod
    def _features_path(cls, value: Path | None) -> Path | None:
        if value is not None and not str(value).strip():
            raise ValueError("the path is empty")
        return None if value is None else Path(value).expanduser()


class PredictConfig(_Section):
    horizon: int = Field(20, ge=1, le=60)
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
    # share of the main score from documented factors (12-1 momentum, one-month reversal,
    # low volatility; aurora.predict.models.FACTORS): 0 LightGBM alone, 1 the factors alone
    factor_weight: float = Field(1.0, ge=0, le=1)


class BacktestConfig(_Section):
    # the walk-forward model whose out-of-sample scores are traded: the main model (LightGBM,
    # or its factor blend), the baseline, or one by name
    model: Literal["main", "baseline", "lightgbm", "ridge"] = "main"
    construction: Literal["top_k", "top_quantile", "long_short"] = "top_quantile"
    weighting: Literal["equal", "score"] = "equal"
    top_k: int = Field(20, ge=1)
    quantiles: int = Field(5, ge=2, le=20)
    # sessions a position is held (None: the prediction horizon)
    holding: int | None = Field(None, ge=1, le=60)
    # overlapping: 1/holding of the book rebalanced each session; periodic: the whole book
    # every `holding` sessions
    mode: Literal["overlapping", "periodic"] = "overlapping"
    book_usd: float = Field(10_000_000.0, gt=0)
    commission_per_share: float = Field(0.005, ge=0)  # USD
    min_commission: float = Field(1.0, ge=0)  # USD per order
    # half the bid-ask spread in basis points; None: estimated per symbol and day from
    # daily highs, lows and closes by `spread_estimator`, at least half a cent
    half_spread_bps: float | None = Field(None, ge=0)
    spread_estimator: Literal["abdi_ranaldo", "corwin_schultz"] = "abdi_ranaldo"
    # square-root impact: impact x daily volatility x sqrt(traded / average dollar volume)
    impact: float = Field(1.0, ge=0)
    borrow_bps: float = Field(50.0, ge=0)  # annual fee on the value of a short


class TrackConfig(_Section):
    # the `decay` alert: the mean realised rank IC of the last `window` scored decisions
    # (at least `min_decisions`) below zero, or below the walk-forward's by `k` standard
    # errors
    window: int = Field(20, ge=1, le=1000)
    min_decisions: int = Field(5, ge=1)
    k: float = Field(2.0, gt=0)


class ComputeConfig(_Section):
    # a Dask scheduler (`tcp://HOST:PORT`): build and evaluate run their tasks on its
    # workers (`aurora.cluster`); None: in this process
    scheduler: str | None = None
    # an out-of-core year task computes its year in pieces of this many months (a divisor
    # of 12), each from its own look-back: more CPU, and no lower peak at 10,000 symbols
    # (docs/scale-out.md)
    block_months: int = 12
    # full builds out of core (`aurora.features.outofcore`): no process holds more than a
    # year of the history, and no incremental build is attempted. Without it, a full build
    # on a scheduler runs its year tasks the same way, but the command reads the whole
    # history first (to plan an incremental build)
    out_of_core: bool = False
    # where an out-of-core build's tasks exchange bars and parts: an fsspec URL such as
    # s3://bucket/prefix, for workers that share no filesystem with the store (credentials
    # from each process's environment); None: the store's state/scratch
    exchange: str | None = None

    @field_validator("scheduler")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not re.fullmatch(r"tcp://[^\s/:]+:[0-9]{1,5}", value.strip()):
            raise ValueError(f"{value!r} is not a scheduler address (tcp://HOST:PORT)")
        return value.strip()

    @field_validator("exchange")
    @classmethod
    def _exchange(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not re.fullmatch(r"[a-z][a-z0-9+]*://[^\s?#@]+", value.strip()):
            raise ValueError("must be a URL such as s3://bucket/prefix, without credentials, "
                             "query or fragment")
        return value.strip()

    @field_validator("block_months")
    @classmethod
    def _months(cls, value: int) -> int:
        if value not in (1, 2, 3, 4, 6, 12):
            raise ValueError(f"must divide a year: 1, 2, 3, 4, 6 or 12 (got {value})")
        return value


class OpsConfig(_Section):
    deadline: str = "16:00"  # HH:MM, 24-hour, in deadline_timezone
    deadline_timezone: str = "America/Chicago"  # an IANA time zone name
    slow_factor: float = Field(3.0, gt=1)
    webhook_url: SecretStr | None = None
    backup_key: SecretStr | None = None
    keep_versions: int = Field(20, ge=1)
    keep_days: int | None = Field(None, ge=1)

    @field_validator("deadline")
    @classmethod
    def _clock(cls, value: str) -> str:
        match = re.fullmatch(r"(\d{1,2}):(\d{2})", value.strip())
        if match is None or int(match[1]) > 23 or int(match[2]) > 59:
            raise ValueError("expected a time of day as HH:MM (24-hour), e.g. 16:00")
        return f"{int(match[1]):02d}:{match[2]}"

    @field_validator("deadline_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError("unknown time zone: expected an IANA name such as "
                             "America/Chicago") from None
        return value

    def deadline_on(self, session: dt.date) -> dt.datetime:
        """The aware datetime of `session`'s data deadline (the settings are validated)."""
        hour, minute = (int(part) for part in self.deadline.split(":"))
        return dt.datetime.combine(session, dt.time(hour, minute),
                                   tzinfo=ZoneInfo(self.deadline_timezone))


class AuroraConfig(_Section):
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
