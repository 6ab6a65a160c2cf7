"""The sections of Aurora's configuration (`[alpaca]`, `[fetch]`, ... of `aurora.toml`):
typed, validated pydantic models with their defaults. `aurora.config` assembles them into
`AuroraConfig` and loads it from the TOML file, the environment and flags."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from aurora.errors import CredentialsError

DEFAULT_DATA_URL = "https://data.alpaca.markets"
DEFAULT_BASE_URL = "https://api.alpaca.markets"  # the trading API (assets)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AlpacaConfig(Section):
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
        # the host alone: Aurora adds the version to each path, and a URL copied with it
        # (https://paper-api.alpaca.markets/v2) would ask /v2/v2/...
        url = urlsplit(value.rstrip("/"))
        path = re.sub(r"/v\d+(beta\d*)?$", "", url.path, flags=re.IGNORECASE)
        return url._replace(path=path).geturl()

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


class FetchConfig(Section):
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


class IntradayConfig(Section):
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


class StreamConfig(Section):
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


class ValidationConfig(Section):
    """Severity of each validation check: error blocks publication, warning is reported."""

    severities: dict[str, Literal["error", "warning", "ignore"]] = Field(default_factory=dict)
    max_move: float = Field(0.5, gt=0)
    stale_run_sessions: int = Field(5, ge=2)
    long_gap_sessions: int = Field(5, ge=2)


class BuildConfig(Section):
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


class PredictConfig(Section):
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


class BacktestConfig(Section):
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


class TrackConfig(Section):
    # the `decay` alert: the mean realised rank IC of the last `window` scored decisions
    # (at least `min_decisions`) below zero, or below the walk-forward's by `k` standard
    # errors
    window: int = Field(20, ge=1, le=1000)
    min_decisions: int = Field(5, ge=1)
    k: float = Field(2.0, gt=0)


class ComputeConfig(Section):
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


class OpsConfig(Section):
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
