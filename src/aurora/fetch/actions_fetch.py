"""The fetch's corporate actions: which symbols are asked over which window, the earlier
names of renamed symbols followed, and an endpoint failure told apart from the run running
out of time (`fetch_actions`)."""

from __future__ import annotations

import datetime as dt
import logging

import polars as pl

from aurora.calendar import next_session
from aurora.config import FetchConfig
from aurora.deadline import Deadline, DeadlineExceeded
from aurora.errors import CredentialsError, FetchError
from aurora.fetch.client import AlpacaBarsClient
from aurora.fetch.corporate_actions import (
    Span,
    as_renamed,
    empty_actions,
    fetch_corporate_actions,
    latest_renames,
    renamed_into_since,
    renames_in,
)
from aurora.fetch.incremental import FetchPlan
from aurora.fetch.outcomes import RequestRejected
from aurora.fetch.publish import Stored

log = logging.getLogger(__name__)

ACTIONS_LOOKBACK_DAYS = 92
# Alpaca matches the actions' dates on process_date, which for a cash dividend can be its
# payable date, weeks after the ex-date: the query reaches this far past the fetch's end
# and keeps the actions in effect by the session after it.
ACTIONS_PROCESSED_AFTER_DAYS = 92


def fetch_actions(client: AlpacaBarsClient, plan: FetchPlan, stored: Stored,
                   restated: dict[str, str], symbols: list[str], history_start: dt.date,
                   fc: FetchConfig, deadline: Deadline
                   ) -> tuple[pl.DataFrame | None, str | None, set[str]]:
    """(actions, None, rederived), or (None, the error, set()) when the endpoint failed;
    `rederived`: the symbols whose chains of earlier names were followed from the whole
    history (their stored renamed copies are replaced by these, `merge_actions`).

    Symbols fetched in full, restated or reconciled (every symbol when the stored actions
    are missing or stale) get their actions over the whole history; the others from the
    start of their window or a quarter back, whichever is earlier: actions can be published
    late; a symbol renamed into since the stored actions were fetched has its chain of
    earlier names followed again (in `rederived`). The query reaches
    `ACTIONS_PROCESSED_AFTER_DAYS` past the plan's end (matched on process_date, which can
    follow the ex-date by weeks) and keeps the actions whose ex-date is at most the session
    after the plan's end (a split going ex today is what the pre-close prediction applies).
    Each request group has the request-group deadline and the whole fetch's `deadline`; the
    latter passing raises DeadlineExceeded (the run is out of time), a group's own deadline
    passing is an endpoint failure like any other.
    """
    deep = {*plan.symbols("full"), *plan.symbols("reconcile"), *restated}
    if stored.actions is None or stored.actions_stale:
        deep = set(symbols)
    shallow = [s for s in symbols if s not in deep]
    groups = [([s for s in symbols if s in deep], history_start)]
    if shallow:
        lookback = plan.end - dt.timedelta(days=ACTIONS_LOOKBACK_DAYS)
        groups.append((shallow, min([lookback, *(plan.windows[s][0] for s in shallow
                                                 if s in plan.windows)])))
    frames = []
    # in effect by the next session (the pre-close prediction applies those); later ones,
    # renames too, are left to a later fetch
    cut = (pl.col("ex_date") <= next_session(plan.end)) | pl.col("ex_date").is_null()
    try:
        for members, first in groups:
            if members:
                frames.append(_actions_processed_by(client, members, first, plan.end, fc,
                                                    deadline).filter(cut))
        # asked a quarter back only: their chains ask them again as old names when needed
        rechained = renamed_into_since(pl.concat(frames) if frames else empty_actions(),
                                       stored.actions, set(shallow))
        frames += _before_renames(client, frames, set(symbols), deep,
                                  latest_renames(stored.actions, set(symbols)), history_start,
                                  fc, deadline)
        deep |= rechained
    except CredentialsError:
        raise
    except FetchError as exc:
        if isinstance(exc, DeadlineExceeded) and (exc.deadline is deadline
                                                  or exc.deadline is client.deadline):
            raise  # the whole fetch is out of time: not an outage of the endpoint
        return None, str(exc), set()
    merged = pl.concat(frames) if frames else empty_actions()  # copies: before a rename
    return merged.unique("id", keep="first", maintain_order=True), None, deep & set(symbols)


def _before_renames(client: AlpacaBarsClient, frames: list[pl.DataFrame], universe: set[str],
                    deep: set[str], stored_latest: dict[str, dt.date], history_start: dt.date,
                    fc: FetchConfig, deadline: Deadline) -> list[pl.DataFrame]:
    """The actions a universe symbol had under its earlier names (asked by those names, as
    Alpaca files them), as its own: its bars carry that history (`asof`).

    A symbol's chain starts at the latest rename into it (none when the stored table holds
    a later one, `stored_latest`: a rename published late): its old name covers the actions
    filed under that name from the latest rename into the name before then (when known) to
    the rename away, and the chain goes on from that earlier rename's old name. Tickers are
    reused, so the other spans of a name belong to other companies. Each name is asked
    once, over the whole history up to the latest rename any chain still needs; one
    already asked so (a universe symbol in `deep`, asked over the whole history, or a name
    met earlier: a ticker that went away and came back) is read from the answers held."""
    held = pl.concat(frames) if frames else empty_actions()
    latest = {new: (old, day) for old, new, day in renames_in(held, universe)}  # sorted by day
    links = [(old, new, day) for new, (old, day) in latest.items()  # (name, symbol, until)
             if day >= stored_latest.get(new, day)]  # not a stored chain's older rename
    asked = universe & deep
    out = []
    while links:
        if names := sorted({name for name, *_ in links} - asked):
            asked |= set(names)
            held = pl.concat([held, _actions_processed_by(
                client, names, history_start,
                max(to for *_, to in links), fc, deadline)])  # later links need less
        renames = renames_in(held, {name for name, *_ in links})
        spans: list[Span] = []
        earlier = []
        for name, symbol, to in links:
            into = max([(d, o) for o, n, d in renames if n == name and d < to], default=None)
            spans.append((name, symbol, None if into is None else into[0], to))
            if into is not None:
                earlier.append((into[1], symbol, into[0]))
        out.append(as_renamed(held, spans))
        links = earlier
    return out


def _actions_processed_by(client: AlpacaBarsClient, symbols: list[str], first: dt.date,
                          end: dt.date, fc: FetchConfig, deadline: Deadline) -> pl.DataFrame:
    """The actions of `symbols` processed from `first` to `ACTIONS_PROCESSED_AFTER_DAYS`
    past `end`; a server that refuses that window (400/422: an `end` in the future, say) is
    asked up to `end` instead, with a warning."""
    later = end + dt.timedelta(days=ACTIONS_PROCESSED_AFTER_DAYS)
    try:
        return fetch_corporate_actions(client, symbols, first, later,
                                       batch_size=fc.batch_size, deadline=deadline)
    except RequestRejected as exc:
        log.warning("corporate actions processed up to %s were refused (%s); asking up to "
                    "%s: a dividend processed after its ex-date may come a fetch later",
                    later, exc, end)
        return fetch_corporate_actions(client, symbols, first, end,
                                       batch_size=fc.batch_size, deadline=deadline)
