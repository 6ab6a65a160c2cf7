"""A fetch never publishes features beside prices they were not built from, and its
corporate-actions page loop ends."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from aurora.atomic import atomic_write_parquet
from aurora.fetch.corporate_actions import fetch_corporate_actions
from aurora.fetch.pages import PagingError
from aurora.fetch.publish import publish_fetch
from aurora.store import Store
from aurora.universe import Universe


def _prices(close: float) -> pl.DataFrame:
    return pl.DataFrame({"date": [dt.date(2024, 1, 2)], "symbol": ["AAA"], "open": [close],
                         "high": [close], "low": [close], "close": [close], "volume": [1.0],
                         "vwap": [close], "trade_count": [1]})


def test_a_fetch_leaves_out_the_features_of_the_old_prices(data_dir):
    store = Store(data_dir)
    params = {"adjustment": "all", "feed": "sip"}
    universe = Universe(("AAA",), {}, "test")
    empty = pl.DataFrame(schema={"id": pl.String})
    first = publish_fetch(store, prices=_prices(10.0), actions=empty, universe=universe,
                          validation={"ok": True}, fetch_report={}, params=params,
                          history_start=dt.date(2024, 1, 2), base_version=None)
    with store.transaction("build", base=first) as txn:
        atomic_write_parquet(txn.path("features.parquet"), pl.DataFrame({"f_x": [1.0]}))
        atomic_write_parquet(txn.path("features.summary.parquet"), pl.DataFrame({"y": [1]}))
        txn.describe("features.parquet",
                     prices_sha256=store.manifest(first).prices_entry().sha256)
    built = store.current_version()
    publish_fetch(store, prices=_prices(11.0), actions=empty, universe=universe,
                  validation={"ok": True}, fetch_report={}, params=params,
                  history_start=dt.date(2024, 1, 2), base_version=built)
    manifest = store.manifest()
    assert "features.parquet" not in manifest.files and manifest.parent == built
    assert "features.summary.parquet" not in manifest.files
    assert manifest.features_from_other_prices() is None
    assert "features.parquet" in store.manifest(built).files  # the build's version keeps them


def test_a_corporate_actions_page_token_loop_ends():
    """The actions endpoint gets the same guard as the bars: a repeated token stops it."""

    class Looping:  # answers every page with the same next_page_token
        calls = 0

        def group_deadline(self, deadline=None):
            return deadline

        def get_json(self, path, params, **_bounds):
            self.calls += 1
            return {"corporate_actions": {}, "next_page_token": "again"}

    client = Looping()
    with pytest.raises(PagingError, match="same next_page_token twice"):
        fetch_corporate_actions(client, ["AAA"], dt.date(2024, 1, 1), dt.date(2024, 3, 1))
    assert client.calls == 2
