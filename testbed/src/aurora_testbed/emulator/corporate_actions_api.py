"""`GET /v1/corporate-actions`: Alpaca's current corporate-actions endpoint.

Filters: `symbols` (matches `symbol`, and for name changes the old or the new symbol),
`cusips`, `types` (Alpaca's 13 type names), `ids` (exclusive with every other filter),
`start`/`end` (inclusive YYYY-MM-DD on process_date, default today in New York). `limit`
1-1000 (default 100) counts actions across all types; `sort` asc|desc orders by
process_date (ties: type, symbol, id); `page_token` resumes strictly after the last action.

Response: {"corporate_actions": {plural_type: [record...]}, "next_page_token": str|null},
only non-empty types present, with the record fields of alpaca-py's models. The shared
schema has no CUSIPs or UUIDs, so the emulator derives them deterministically: `cusip` is a
check-digit-valid 9-character code hashed from the symbol, and `id` is the stored id when it
is a UUID, else uuid5 of it (both documented in docs/emulator.md).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

import polars as pl

from aurora_testbed.emulator.bars_api import RequestContext
from aurora_testbed.emulator.pagination import decode_token, encode_token, fingerprint
from aurora_testbed.emulator.params import (
    DEFAULT_ACTIONS_LIMIT,
    MAX_ACTIONS_LIMIT,
    ParamError,
    ny_date,
    parse_choice,
    parse_date,
    parse_limit,
    parse_symbols,
    present,
)

ALPACA_TYPES = (
    "reverse_split", "forward_split", "unit_split", "cash_dividend", "stock_dividend",
    "spin_off", "cash_merger", "stock_merger", "stock_and_cash_merger", "redemption",
    "name_change", "worthless_removal", "rights_distribution",
)
PLURAL = {t: f"{t}s" for t in ALPACA_TYPES}
_ID_NAMESPACE = uuid.UUID("6f1c3a52-6a43-4b55-9d0e-6d3b2c1a9e01")
_CUSIP_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*@#"


def cusip_check_digit(body: str) -> str:
    """The CUSIP check digit of an 8-character body (modulus 10, double-add-double)."""
    total = 0
    for i, ch in enumerate(body.upper()):
        value = _CUSIP_CHARS.index(ch)
        if i % 2 == 1:
            value *= 2
        total += value // 10 + value % 10
    return str((10 - total % 10) % 10)


def fake_cusip(symbol: str) -> str:
    """A deterministic, check-digit-valid 9-character CUSIP-like code for `symbol`."""
    digest = hashlib.sha256(symbol.encode()).digest()
    body = "".join(_CUSIP_CHARS[b % 36] for b in digest[:6]) + "10"
    return body + cusip_check_digit(body)


def served_id(stored: str) -> str:
    """The stored id when it is a UUID, else a stable uuid5 derived from it."""
    try:
        return str(uuid.UUID(stored))
    except ValueError:
        return str(uuid.uuid5(_ID_NAMESPACE, stored))


def render_action(row: Mapping[str, Any]) -> dict[str, Any]:
    """One action in Alpaca's per-type field set (dates as YYYY-MM-DD strings)."""
    kind, symbol = row["action_type"], row["symbol"]
    base: dict[str, Any] = {"id": served_id(row["id"])}
    process, ex = row["process_date"].isoformat(), row["ex_date"].isoformat()
    if kind == "forward_split":
        return base | {"symbol": symbol, "cusip": fake_cusip(symbol), "new_rate": row["new_rate"],
                       "old_rate": row["old_rate"], "process_date": process, "ex_date": ex}
    if kind == "reverse_split":
        return base | {"symbol": symbol, "old_cusip": fake_cusip(symbol + "/old"),
                       "new_cusip": fake_cusip(symbol), "new_rate": row["new_rate"],
                       "old_rate": row["old_rate"], "process_date": process, "ex_date": ex}
    if kind == "cash_dividend":
        return base | {"symbol": symbol, "cusip": fake_cusip(symbol), "rate": row["cash_rate"],
                       "special": False, "foreign": False, "process_date": process,
                       "ex_date": ex, "record_date": ex}
    old = row["old_symbol"]
    return base | {"old_symbol": old, "old_cusip": fake_cusip(old), "new_symbol": symbol,
                   "new_cusip": fake_cusip(symbol), "process_date": process}


def get_corporate_actions(params: Mapping[str, str], ctx: RequestContext,
                          actions: pl.DataFrame) -> dict[str, Any]:
    """GET /v1/corporate-actions (see the module docstring)."""
    today = ny_date(ctx.now)
    ids = present(params.get("ids"))
    filters = ("symbols", "cusips", "types", "start", "end")
    if ids is not None and any(present(params.get(f)) for f in filters):
        raise ParamError("ids cannot be combined with other filters")
    symbols = parse_symbols(params.get("symbols"), required=False)
    cusips = {c.strip().upper() for c in (present(params.get("cusips")) or "").split(",") if c}
    types = {t.strip() for t in (present(params.get("types")) or "").split(",") if t}
    unknown = types - set(ALPACA_TYPES)
    if unknown:
        raise ParamError(f"invalid types: {', '.join(sorted(unknown))}")
    start = parse_date("start", params.get("start"), today)
    end = parse_date("end", params.get("end"), today)
    if start > end:
        raise ParamError("end should not be before start")
    limit = parse_limit(params.get("limit"), default=DEFAULT_ACTIONS_LIMIT,
                        maximum=MAX_ACTIONS_LIMIT)
    sort = parse_choice("sort", params.get("sort"), ("asc", "desc"), "asc")
    canonical = {k: present(params.get(k)) or "" for k in ("ids", "cusips", "types", "sort")}
    canonical |= {"symbols": ",".join(symbols), "start": str(start), "end": str(end)}
    query_fp = fingerprint("/v1/corporate-actions", canonical)
    token = present(params.get("page_token"))
    after = decode_token(token, query_fp) if token is not None else None

    rows = [dict(r, _id=served_id(r["id"])) for r in actions.iter_rows(named=True)]
    if ids is not None:
        wanted = {i.strip() for i in ids.split(",") if i.strip()}
        rows = [r for r in rows if r["_id"] in wanted or r["id"] in wanted]
    else:
        rows = [r for r in rows if start <= r["process_date"] <= end]
        if types:
            rows = [r for r in rows if r["action_type"] in types]
        if symbols:
            rows = [r for r in rows if r["symbol"] in symbols or r["old_symbol"] in symbols]
        if cusips:
            rows = [r for r in rows
                    if {fake_cusip(r["symbol"]), fake_cusip(r["old_symbol"] or "")} & cusips]

    def key(r: Mapping[str, Any]) -> list[Any]:
        return [r["process_date"].isoformat(), r["action_type"], r["symbol"], r["_id"]]

    rows.sort(key=key, reverse=sort == "desc")
    if after is not None:
        rows = [r for r in rows if (key(r) < after if sort == "desc" else key(r) > after)]
    page, more = rows[:limit], len(rows) > limit
    full = len(page) == limit and ctx.faults.full_page_token
    out: dict[str, list[dict[str, Any]]] = {}
    for r in page:
        out.setdefault(PLURAL[r["action_type"]], []).append(render_action(r))
    token_out = encode_token(key(page[-1]), query_fp) if page and (more or full) else None
    return {"corporate_actions": out, "next_page_token": token_out}
