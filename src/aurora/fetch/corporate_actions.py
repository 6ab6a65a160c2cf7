"""Corporate actions from `GET /v1/corporate-actions` into Aurora's actions table.

Contract:
- Requests splits, cash and stock dividends, name changes and spin-offs for the given symbols
  (batches of `batch_size`), `start`..`end` inclusive dates matched by the API on
  `process_date`, `limit=1000`, following `next_page_token`; pages merge per action type.
- Output schema (shared contract, `CA_SCHEMA`): id, action_type (forward_split |
  reverse_split | stock_dividend | cash_dividend | name_change | spin_off), symbol (the NEW
  symbol for a name change, the parent for a spin-off), old_symbol, ex_date (for a name
  change: its ex_date when given, else its process_date), process_date, old_rate,
  new_rate (splits; a stock dividend of `rate` shares per share is old_rate 1, new_rate
  1 + rate, a split in effect; for a spin-off Alpaca's source_rate and new_rate: `new_rate`
  shares of the new company per `old_rate` parent shares), cash_rate (dividends),
  target_symbol (a spin-off's new company); one row per id. `conform_actions` gives a
  stored table of the older schema (no target_symbol) the current columns.
- Records of other types and unknown keys are ignored. A record missing a required field
  raises FetchError naming the type and id. A 200 without `corporate_actions` (null or {}
  when there are none) is malformed and retried like a 5xx, never read as no actions.
- Renames: `renames_in` reads the name changes of a table, `as_renamed` gives an old
  symbol's actions within a span (its own rename into that name, when known, to its
  rename away) as the new symbol's (the fetch asks for them by the old symbol, as Alpaca
  files them); `without_earlier_holders` drops what was filed under a current symbol
  before the rename into it (the ticker then named another company).
- Each batch of symbols is one request group, bounded like a bars request group: its
  pages, retries and waits must end within the client's `group_deadline_seconds`
  (`fetch.request_group_deadline_seconds`) from its start, and before `deadline` (the
  whole fetch's, when the caller passes one) and the client's own deadline; else
  `DeadlineExceeded` naming the group and the deadline that passed. Its page loop ends on a
  repeated `next_page_token` or past what the window can hold (`PagingError`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from typing import Any

import polars as pl

from aurora.deadline import Deadline
from aurora.errors import FetchError
from aurora.fetch.client import AlpacaBarsClient
from aurora.fetch.pages import MalformedResponse, PageGuard, describe_symbols
from aurora.schemas import (
    CORPORATE_ACTIONS_EXTRA,
    CORPORATE_ACTIONS_SCHEMA,
    DIVIDEND_TYPES,
    SPIN_OFF_TYPES,
    SPLIT_TYPES,
)

CA_PATH = "/v1/corporate-actions"
PAGE_LIMIT = 1000
TYPES = (*SPLIT_TYPES, *DIVIDEND_TYPES, "name_change", *SPIN_OFF_TYPES)
CA_SCHEMA = {**CORPORATE_ACTIONS_SCHEMA, **CORPORATE_ACTIONS_EXTRA}


def empty_actions() -> pl.DataFrame:
    """An empty actions table with the shared schema."""
    return pl.DataFrame(schema=CA_SCHEMA)


def conform_actions(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with exactly the columns of `CA_SCHEMA`, in order and cast: a column added to
    the schema later (`CORPORATE_ACTIONS_EXTRA`) that a stored table lacks is all null."""
    missing = [pl.lit(None, dtype).alias(c) for c, dtype in CA_SCHEMA.items()
               if c not in frame.columns]
    return (frame.with_columns(missing) if missing else frame).select(
        pl.col(c).cast(dtype) for c, dtype in CA_SCHEMA.items())


def _date(value: Any) -> dt.date | None:
    return dt.date.fromisoformat(str(value)[:10]) if value else None


def _row(kind: str, rec: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(CA_SCHEMA)
    row["id"] = str(rec["id"])
    row["action_type"] = kind
    row["process_date"] = _date(rec.get("process_date"))
    if kind == "name_change":
        row["symbol"] = rec["new_symbol"]
        row["old_symbol"] = rec["old_symbol"]
        row["ex_date"] = _date(rec.get("ex_date")) or row["process_date"]
    elif kind == "spin_off":
        row["symbol"] = rec["source_symbol"]
        row["target_symbol"] = rec["new_symbol"]
        row["ex_date"] = _date(rec["ex_date"])
        row["old_rate"] = float(rec["source_rate"])
        row["new_rate"] = float(rec["new_rate"])
    else:
        row["symbol"] = rec["symbol"]
        row["ex_date"] = _date(rec["ex_date"])
    if kind in ("forward_split", "reverse_split"):
        row["old_rate"] = float(rec["old_rate"])
        row["new_rate"] = float(rec["new_rate"])
    elif kind == "stock_dividend":
        row["old_rate"] = 1.0
        row["new_rate"] = 1.0 + float(rec["rate"])
    elif kind == "cash_dividend":
        row["cash_rate"] = float(rec["rate"])
    return row


def parse_actions(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of one response page (types outside `TYPES` are skipped)."""
    groups = payload.get("corporate_actions") or {}
    if not isinstance(groups, dict):
        raise FetchError(f"{CA_PATH}: 'corporate_actions' is not an object")
    rows = []
    for plural, records in groups.items():
        kind = plural[:-1] if plural.endswith("s") else plural
        if kind not in TYPES:
            continue
        for rec in records or []:
            try:
                rows.append(_row(kind, rec))
            except (KeyError, TypeError, ValueError) as exc:
                ident = rec.get("id", "?") if isinstance(rec, dict) else "?"
                raise FetchError(f"{CA_PATH}: {kind} {ident} lacks or mangles {exc}") from None
    return rows


def _with_actions(page: dict[str, Any]) -> dict[str, Any]:
    """`page` when it has `corporate_actions` (null or {} when there are none), else
    MalformedResponse, retried like a 5xx: a 200 without it is not an empty answer."""
    if "corporate_actions" not in page:
        raise MalformedResponse("the body had no 'corporate_actions'")
    return page


def _page_cap(symbols: int, start: dt.date, end: dt.date) -> int:
    """Pages a group can need, generously: a symbol has at most a dividend a week plus a
    few splits and renames a year, 1000 records a page; twice that, plus one page per
    symbol (a page may hold fewer than `limit` records, e.g. one symbol's), plus five."""
    records = symbols * ((end - start).days // 7 + 10)
    return 2 * -(-records // PAGE_LIMIT) + symbols + 5


def fetch_corporate_actions(
    client: AlpacaBarsClient,
    symbols: Sequence[str],
    start: dt.date,
    end: dt.date,
    *,
    batch_size: int = 50,
    deadline: Deadline | None = None,
) -> pl.DataFrame:
    """All splits, dividends, name changes and spin-offs of `symbols` processed in
    `start`..`end`.

    One request group per `batch_size` symbols, each with its own request-group deadline
    (`client.group_deadline(deadline)`: `group_deadline_seconds` from the group's start,
    or `deadline` / the client's deadline when earlier). The page loop ends on a repeated
    `next_page_token` or past what the window can hold (`PagingError`, from
    `aurora.fetch.client.PageGuard`). Raises what `client.get_json` raises (FetchError
    subclasses such as DeadlineExceeded, and CredentialsError) at the first failing group.
    """
    rows: list[dict[str, Any]] = []
    for i in range(0, len(symbols), batch_size):
        group = symbols[i : i + batch_size]
        what = f"GET {CA_PATH} for {describe_symbols(group)}"
        guard = PageGuard(_page_cap(len(group), start, end), what,
                          f"{len(group)} symbols over {(end - start).days + 1} days")
        limit = client.group_deadline(deadline)
        params: dict[str, Any] = {
            "symbols": ",".join(group),
            "types": ",".join(TYPES),
            "start": start.isoformat(),
            "end": end.isoformat(),
            "limit": PAGE_LIMIT,
            "sort": "asc",
        }
        token: str | None = None
        while True:
            page = client.get_json(CA_PATH, dict(params, page_token=token) if token else params,
                                   deadline=limit, what=what, parse=_with_actions)
            rows.extend(parse_actions(page))
            token = page.get("next_page_token") or None
            if token is None:
                break
            guard.advance(str(token))
    if not rows:
        return empty_actions()
    frame = pl.DataFrame(rows, schema=CA_SCHEMA)
    return frame.unique("id", keep="first", maintain_order=True).sort(
        "symbol", "ex_date", "action_type"
    )


def merge_actions(stored: pl.DataFrame | None, fetched: pl.DataFrame,
                  rederived: Collection[str] = (), through: dt.date = dt.date.max
                  ) -> pl.DataFrame:
    """Union by `id`; a fetched record replaces a stored one with the same id. The stored
    renamed copies (`as_renamed`) of the `rederived` symbols with ex-dates up to `through`
    are dropped: the fetch made theirs again from their whole history up to then, so a copy
    from a chain of names since changed (another company took the ticker) goes."""
    fetched = conform_actions(fetched)
    if stored is None or stored.height == 0:
        return fetched
    stored = conform_actions(stored).filter(~(
        pl.col("symbol").is_in(list(rederived))
        & (pl.col("ex_date").fill_null(dt.date.min) <= through)
        & pl.col("id").str.ends_with(pl.lit("@") + pl.col("symbol"))))
    both = pl.concat([stored.join(fetched.select("id"), on="id", how="anti"), fetched])
    return both.sort("symbol", "ex_date", "action_type")


# an old symbol's actions that are a current symbol's: (old, current, from, to) covers the
# actions filed under `old` with from <= ex_date < to (from None: since the history's start)
Span = tuple[str, str, dt.date | None, dt.date]


def renames_in(actions: pl.DataFrame, into: set[str]) -> list[tuple[str, str, dt.date]]:
    """The name changes in `actions` to a symbol in `into`: (old, new, ex_date). A record
    without a date, or from a symbol to itself (a CUSIP change), renames nothing."""
    rows = actions.filter((pl.col("action_type") == "name_change")
                          & pl.col("old_symbol").is_not_null() & pl.col("ex_date").is_not_null()
                          & (pl.col("old_symbol") != pl.col("symbol"))
                          & pl.col("symbol").is_in(list(into)))
    return list(rows.select("old_symbol", "symbol", "ex_date").sort("ex_date").iter_rows())


def latest_renames(actions: pl.DataFrame | None, into: set[str]) -> dict[str, dt.date]:
    """symbol of `into` -> the date of the latest rename into it in `actions`."""
    return {} if actions is None else {new: day for _, new, day in renames_in(actions, into)}


def renamed_into_since(actions: pl.DataFrame, stored: pl.DataFrame | None,
                       symbols: set[str]) -> set[str]:
    """The `symbols` with a rename into them in `actions` later than any in `stored` (a
    rename published late with an earlier date starts no new chain)."""
    known = latest_renames(stored, symbols)
    return {new for new, day in latest_renames(actions, symbols).items()
            if day > known.get(new, dt.date.min)}


def as_renamed(actions: pl.DataFrame, spans: list[Span]) -> pl.DataFrame:
    """The actions each span covers, as its current symbol's (its bars carry the old
    symbol's history: Alpaca's `asof` mapping), each with a stable id of its own
    (`<id>@<symbol>`). Name changes are left out."""
    parts = [actions.filter((pl.col("symbol") == old) & (pl.col("action_type") != "name_change")
                            & (pl.col("ex_date") < to)
                            & (pl.col("ex_date") >= since if since is not None else True))
             .with_columns(symbol=pl.lit(new), id=pl.col("id") + f"@{new}")
             for old, new, since, to in spans]
    return pl.concat(parts) if parts else actions.clear()


def without_earlier_holders(actions: pl.DataFrame, into: set[str]) -> pl.DataFrame:
    """`actions` less those filed under a symbol of `into` before the latest rename into
    it: tickers are reused, so that symbol then named another company (META was a Roundhill
    ETF's ticker until Facebook took it on 2022-06-09), whose dividends and splits must not
    adjust the renamed company's history. That company's own earlier actions come under its
    earlier names (`as_renamed`: ids `<id>@<symbol>`, kept), also when a server files them
    under the new symbol too. Name changes are kept."""
    since = {new: day for _, new, day in renames_in(actions, into)}  # sorted: latest wins
    if not since:
        return actions
    held_from = pl.col("symbol").replace_strict(since, default=None, return_dtype=pl.Date)
    renamed_copy = pl.col("id").str.ends_with(pl.lit("@") + pl.col("symbol"))
    return actions.filter((pl.col("action_type") == "name_change") | held_from.is_null()
                          | (pl.col("ex_date") >= held_from) | renamed_copy
                          | pl.col("ex_date").is_null())  # refused, by name, when applied
