"""Which universe symbols stopped trading: Alpaca's trading API, `GET /v2/assets`.

Contract:
- `fetch_asset_statuses(config, symbols, *, limiter, ...)` makes ONE request group, `GET
  {alpaca.base_url}/v2/assets?asset_class=us_equity` (every status: Alpaca answers one JSON
  array, not paged, sorted by class, exchange and symbol), through `AlpacaBarsClient` on
  the trading URL (`APCA_API_BASE_URL`): paced by `limiter`, retried and bounded by the
  `[fetch]` settings (`max_retries`, `timeout_seconds`, `request_group_deadline_seconds`,
  plus the caller's `deadline`), its body read up to `client.MAX_BODY_BYTES`. It returns the
  `AssetStatuses` of `symbols`, or raises what `get_json` raises (`FetchError`s,
  `CredentialsError`), one line each, never with a credential.
- `asset_statuses(...)` is the same for the fetch stage, which must go on without them: a
  failure is returned as an unavailable `AssetStatuses` whose `error` is the one-line reason.
- Rows (`parse_assets`): JSON objects with `symbol` (a non-empty string), `status` (`active`
  or `inactive`) and `tradable` (a boolean), and optionally `name` and `exchange` (a string
  or null); unknown fields are ignored and rows whose `class` is not `us_equity` skipped.
  Only the rows of the symbols asked about are checked (`wanted`; the real answer holds tens
  of thousands of rows, and an odd one elsewhere must not cost the statuses): a bad one of
  those is `MalformedResponse` naming the row, so the answer is retried like a 5xx; an
  answer that is not an array of objects with symbols is malformed as a whole.
- Symbols are normalised with `aurora.universe.normalize_symbol`. When several rows answer
  to one symbol (a row under the symbol itself and one under a spelling the symbol map
  sends there, such as FB for META; a ticker reused after a delisting), the server's own
  spelling wins over a mapped one, then an active row over an inactive one, then a
  tradable one.
- `AssetStatuses` tells, of the symbols asked: `inactive` (delisted: their history ends at
  their last bar), `not_tradable` (active, closing trades only: usually delisted to OTC)
  and `unknown` (not listed by the server). Nothing here prints.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import httpx

from aurora.deadline import Deadline
from aurora.errors import CredentialsError, FetchError
from aurora.fetch.client import AlpacaBarsClient
from aurora.fetch.outcomes import ClientStats
from aurora.fetch.pages import MalformedResponse, printable
from aurora.fetch.ratelimit import RateLimiter
from aurora.universe import normalize_symbol

if TYPE_CHECKING:
    from aurora.config import AuroraConfig

ASSETS_PATH = "/v2/assets"
ASSET_CLASS = "us_equity"
PAPER_URL = "https://paper-api.alpaca.markets"
Status = Literal["active", "inactive"]


@dataclass(frozen=True)
class AssetStatus:
    """One row of `/v2/assets`: `symbol` as the server spells it."""

    symbol: str
    status: Status
    tradable: bool
    name: str | None = None
    exchange: str | None = None


@dataclass(frozen=True)
class AssetStatuses:
    """The server's statuses of the symbols asked about (module docstring).

    `assets` maps each asked symbol the server lists to its row; `listed` counts the rows
    of the answer; `error` is why the statuses are unavailable (then `assets` is empty and
    no symbol is called inactive, not tradable or unknown).
    """

    symbols: tuple[str, ...]
    assets: Mapping[str, AssetStatus] = field(default_factory=dict)
    listed: int = 0
    error: str | None = None
    # the symbols the version read recorded as inactive: still ended when unavailable
    recorded: tuple[str, ...] = ()

    @property
    def available(self) -> bool:
        return self.error is None

    @property
    def inactive(self) -> tuple[str, ...]:
        """The asked symbols the server lists as inactive (delisted), in asked order; when
        the statuses are unavailable, those the version read recorded as inactive (a
        delisting is not undone)."""
        if self.error is not None:
            return tuple(s for s in self.symbols if s in self.recorded)
        return tuple(s for s in self.symbols
                     if s in self.assets and self.assets[s].status == "inactive")

    @property
    def not_tradable(self) -> tuple[str, ...]:
        """The asked symbols listed active but not tradable (closing trades only)."""
        return tuple(s for s in self.symbols if s in self.assets
                     and self.assets[s].status == "active" and not self.assets[s].tradable)

    @property
    def unknown(self) -> tuple[str, ...]:
        """The asked symbols the server does not list (none when unavailable)."""
        return () if self.error else tuple(s for s in self.symbols if s not in self.assets)

    def warning(self) -> str | None:
        """The fetch's warning when the statuses are unavailable, else None."""
        if self.error is None:
            return None
        kept = (f"the {len(self.inactive)} symbol(s) recorded inactive before stay ended; "
                if self.inactive else "")
        return (f"asset statuses unavailable ({self.error}): {kept}symbols that stopped "
                "trading are reported as stale_symbol")

    def record(self, last_bars: Mapping[str, dt.date | None]) -> dict[str, Any]:
        """The statuses used, for fetch_report.json: `inactive` (symbol -> the date of its
        last bar, `last_bars`, or None without any), `not_tradable`, `unknown`, `listed`
        and `error`."""
        return {
            "inactive": {s: _iso(last_bars.get(s)) for s in self.inactive},
            "not_tradable": list(self.not_tradable),
            "unknown": list(self.unknown),
            "listed": self.listed,
            "error": self.error,
        }


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day is not None else None


def _row(index: int, row: Any, wanted: Collection[str] | None) -> AssetStatus | None:
    """One row as an `AssetStatus`; None for a row of another asset class or, with
    `wanted`, of a symbol not asked about."""
    where = f"asset row {index + 1}"
    if not isinstance(row, dict):
        raise MalformedResponse(f"{where} is not an object")
    symbol = row.get("symbol")
    if not isinstance(symbol, str) or not symbol.strip():
        raise MalformedResponse(f"{where} has no symbol ('symbol' is {printable(symbol)})")
    where = f"asset row {index + 1} ({printable(symbol)})"
    if row.get("class", ASSET_CLASS) != ASSET_CLASS:
        return None
    if wanted is not None and normalize_symbol(symbol) not in wanted:
        return None
    status, tradable = row.get("status"), row.get("tradable")
    if status not in ("active", "inactive"):
        raise MalformedResponse(f"{where} has status {printable(status)} (active or inactive)")
    if not isinstance(tradable, bool):
        raise MalformedResponse(f"{where} has 'tradable' = {printable(tradable)}, "
                                "not a boolean")
    texts = {}
    for name in ("name", "exchange"):
        value = row.get(name)
        if value is not None and not isinstance(value, str):
            raise MalformedResponse(f"{where} has {name!r} = {printable(value)}, "
                                    "not a string")
        texts[name] = value
    return AssetStatus(symbol.strip(), status, tradable, texts["name"], texts["exchange"])


def parse_assets(data: Any, wanted: Collection[str] | None = None) -> list[AssetStatus]:
    """The us_equity rows of a `/v2/assets` answer (a JSON array), those of the `wanted`
    symbols (normalised) only when given; MalformedResponse naming the first bad row
    (module docstring)."""
    if not isinstance(data, list):
        raise MalformedResponse("the assets answer is not a JSON array")
    return [asset for i, row in enumerate(data)
            if (asset := _row(i, row, wanted)) is not None]


def _parse_counted(data: Any, wanted: Collection[str]) -> tuple[list[AssetStatus], int]:
    """(`parse_assets(data, wanted)`, the number of rows of the answer)."""
    return parse_assets(data, wanted), len(data)


def _rank(asset: AssetStatus, symbol: str) -> tuple[bool, bool, bool]:
    return (asset.symbol.upper() == symbol, asset.status == "active", asset.tradable)


def statuses_of(assets: Iterable[AssetStatus], symbols: Sequence[str],
                listed: int | None = None) -> AssetStatuses:
    """The statuses of `symbols` (normalised already) among `assets` (module docstring);
    `listed`: the rows of the whole answer (default: those of `assets`)."""
    wanted = set(symbols)
    chosen: dict[str, AssetStatus] = {}
    count = 0
    for asset in assets:
        count += 1
        symbol = normalize_symbol(asset.symbol)
        if symbol in wanted and (symbol not in chosen
                                 or _rank(asset, symbol) > _rank(chosen[symbol], symbol)):
            chosen[symbol] = asset
    return AssetStatuses(tuple(symbols), chosen, count if listed is None else listed)


def fetch_asset_statuses(
    config: AuroraConfig,
    symbols: Sequence[str],
    *,
    limiter: RateLimiter,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] | None = None,
    deadline: Deadline | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    stats: ClientStats | None = None,
) -> AssetStatuses:
    """The trading API's statuses of `symbols` (normalised), in one request group (module
    docstring). `stats`: count the requests into these (the fetch's) counters."""
    client = AlpacaBarsClient.from_config(config, limiter=limiter, transport=transport,
                                          sleep=sleep, deadline=deadline, monotonic=monotonic,
                                          trading=True, stats=stats)
    with client:
        rows = client.get_json(ASSETS_PATH, {"asset_class": ASSET_CLASS},
                               deadline=client.group_deadline(),
                               what=f"GET {ASSETS_PATH}",
                               parse=functools.partial(_parse_counted,
                                                       wanted=frozenset(symbols)),
                               expect="array")
    return statuses_of(rows[0], symbols, listed=rows[1])


def asset_statuses(config: AuroraConfig, symbols: Sequence[str], **kwargs: Any
                   ) -> AssetStatuses:
    """`fetch_asset_statuses`, with a failure (connection, HTTP error after the retries, a
    malformed answer, rejected credentials, a deadline) returned as unavailable statuses
    whose `error` says why in one line (the credentials' hint names `APCA_API_BASE_URL`)."""
    try:
        return fetch_asset_statuses(config, symbols, **kwargs)
    except CredentialsError as exc:
        hint = ("" if config.alpaca.base_url == PAPER_URL else
                f"; paper-trading keys need APCA_API_BASE_URL={PAPER_URL}")
        return AssetStatuses(tuple(symbols), error=f"{exc}{hint}")
    except FetchError as exc:
        return AssetStatuses(tuple(symbols), error=str(exc))
