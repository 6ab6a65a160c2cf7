"""`GET /v2/assets` and `GET /v2/assets/{symbol_or_id}`: the trading API's assets (§6).

`/v2/assets` answers ONE JSON array, not paged, sorted by class, exchange and symbol, of
the market's assets (`MarketData.assets`), filtered by `status` (`active` | `inactive`;
every status when absent), `asset_class` (default `us_equity`; `us_option`, `crypto`,
`crypto_perp` list nothing here), `exchange` (one of Alpaca's exchange names) and
`attributes` (a comma list: assets having any of them). Another value of `status`,
`asset_class` or `exchange` is 400 `{"message"}`.

`/v2/assets/{symbol_or_id}` is the one asset whose symbol (case-insensitive, URL-decoded)
or id matches, else 404 `{"code": 40410000, "message": "asset not found for X"}`.

Each asset has Alpaca's fields: `id` (a uuid5 of the symbol, stable across runs), `class`,
`exchange`, `symbol`, `name`, `status`, `tradable`, and `marginable`, `shortable`,
`easy_to_borrow`, `fractionable` (equal to `tradable`), `maintenance_margin_requirement`
(30 when tradable, else 100) and `attributes` (a list).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from aurora_testbed.emulator.assets import ASSET_CLASSES, EXCHANGES, Asset
from aurora_testbed.emulator.params import ParamError, present

_ID_NAMESPACE = uuid.UUID("0b6f1d4e-3c1a-4f4b-8a57-2f1e9c7d5a10")
NOT_FOUND_CODE = 40410000


def asset_id(symbol: str, asset_class: str = "us_equity") -> str:
    """The stable id of an asset: uuid5 of its class and symbol."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{asset_class}:{symbol}"))


def render_asset(asset: Asset) -> dict[str, Any]:
    """One asset as Alpaca's JSON object."""
    tradable = asset.tradable
    return {
        "id": asset_id(asset.symbol, asset.asset_class), "class": asset.asset_class,
        "exchange": asset.exchange, "symbol": asset.symbol, "name": asset.name,
        "status": asset.status, "tradable": tradable, "marginable": tradable,
        "maintenance_margin_requirement": 30 if tradable else 100,
        "shortable": tradable, "easy_to_borrow": tradable, "fractionable": tradable,
        "attributes": list(asset.attributes),
    }


def _choice(name: str, value: str | None, allowed: Sequence[str]) -> str | None:
    value = present(value)
    if value is not None and value not in allowed:
        raise ParamError(f"invalid {name}: {value!r} (one of {', '.join(allowed)})")
    return value


def get_assets(params: Mapping[str, str], assets: Sequence[Asset]) -> list[dict[str, Any]]:
    """GET /v2/assets (see the module docstring)."""
    status = _choice("status", params.get("status"), ("active", "inactive"))
    asset_class = _choice("asset_class", params.get("asset_class"), ASSET_CLASSES) or "us_equity"
    exchange = _choice("exchange", params.get("exchange"), EXCHANGES)
    wanted = {a.strip() for a in (present(params.get("attributes")) or "").split(",")
              if a.strip()}
    return [render_asset(a) for a in assets
            if a.asset_class == asset_class
            and (status is None or a.status == status)
            and (exchange is None or a.exchange == exchange)
            and (not wanted or wanted & set(a.attributes))]


def get_asset(key: str, assets: Sequence[Asset]) -> tuple[int, dict[str, Any]]:
    """GET /v2/assets/{symbol_or_id}: (200, the asset) or (404, Alpaca's error body)."""
    for asset in assets:
        if asset.symbol == key.upper() or asset_id(asset.symbol, asset.asset_class) == key:
            return 200, render_asset(asset)
    return 404, {"code": NOT_FOUND_CODE, "message": f"asset not found for {key}"}
