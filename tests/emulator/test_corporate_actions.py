"""/v1/corporate-actions: filters on process_date, paging across types, field sets."""

from __future__ import annotations

import uuid

import pytest

from aurora_testbed.emulator.corporate_actions_api import cusip_check_digit, fake_cusip, served_id

ALL = {"start": "2020-01-01", "end": "2024-12-31"}


def test_all_actions_with_alpaca_field_sets(client):
    body = client.get("/v1/corporate-actions", params=ALL).json()
    assert body["next_page_token"] is None
    acts = body["corporate_actions"]
    assert sorted(acts) == ["cash_dividends", "forward_splits", "name_changes", "reverse_splits"]
    (split,) = acts["forward_splits"]
    assert set(split) == {"id", "symbol", "cusip", "new_rate", "old_rate", "process_date",
                          "ex_date"}
    assert (split["symbol"], split["old_rate"], split["new_rate"], split["ex_date"]) == (
        "AAPL", 1.0, 4.0, "2022-08-31")
    (rename,) = acts["name_changes"]
    assert set(rename) == {"id", "old_symbol", "old_cusip", "new_symbol", "new_cusip",
                           "process_date"}
    assert (rename["old_symbol"], rename["new_symbol"], rename["process_date"]) == (
        "FB", "META", "2022-06-09")
    (reverse,) = acts["reverse_splits"]
    assert (reverse["old_rate"], reverse["new_rate"]) == (2.0, 1.0)
    assert {"old_cusip", "new_cusip"} <= set(reverse)
    dividends = acts["cash_dividends"]
    assert [d["rate"] for d in dividends] == [1.0, 1.1]
    assert all(d["special"] is False and d["foreign"] is False for d in dividends)
    for records in acts.values():
        for rec in records:
            uuid.UUID(rec["id"])


def test_filters_symbols_types_and_process_date_window(client):
    def kinds(**params):
        return client.get("/v1/corporate-actions", params=ALL | params).json()[
            "corporate_actions"]

    assert list(kinds(symbols="JNJ")) == ["cash_dividends"]
    assert list(kinds(symbols="FB")) == ["name_changes"]  # old symbol matches too
    assert list(kinds(types="forward_split,reverse_split")) == ["forward_splits",
                                                                 "reverse_splits"]
    window = kinds(start="2022-05-20", end="2022-08-31")
    assert sum(len(v) for v in window.values()) == 3  # both bounds inclusive
    assert kinds(start="2021-01-01", end="2021-12-31") == {}
    cusip = fake_cusip("XOM")
    assert list(kinds(cusips=cusip)) == ["reverse_splits"]


def test_default_window_is_today(client):
    assert client.get("/v1/corporate-actions").json() == {"corporate_actions": {},
                                                          "next_page_token": None}


def test_ids_filter_and_its_exclusivity(client):
    wanted = served_id("fb-meta")
    body = client.get("/v1/corporate-actions", params={"ids": wanted}).json()
    assert [r["id"] for r in body["corporate_actions"]["name_changes"]] == [wanted]
    resp = client.get("/v1/corporate-actions", params={"ids": wanted, "symbols": "FB"})
    assert resp.status_code == 400


def test_paging_across_types_in_process_date_order(client):
    seen, token, pages = [], None, 0
    while True:
        params = ALL | {"limit": 2} | ({"page_token": token} if token else {})
        body = client.get("/v1/corporate-actions", params=params).json()
        pages += 1
        assert sum(len(v) for v in body["corporate_actions"].values()) <= 2
        for records in body["corporate_actions"].values():
            seen.extend((r["process_date"], r["id"]) for r in records)
        token = body["next_page_token"]
        if token is None:
            break
    assert pages == 3 and len(seen) == 5 == len(set(seen))
    desc = client.get("/v1/corporate-actions", params=ALL | {"limit": 1, "sort": "desc"}).json()
    assert list(desc["corporate_actions"]) == ["reverse_splits"]  # the latest, 2023-03-01


@pytest.mark.parametrize(
    "params",
    [{"types": "stock_split"}, {"limit": "0"}, {"limit": "1001"}, {"start": "2022-13-01"},
     {"start": "2022-01-01T00:00:00Z"}, {"start": "2023-01-01", "end": "2022-01-01"},
     {"sort": "up"}, {"page_token": "null"}],
)
def test_validation(client, params):
    resp = client.get("/v1/corporate-actions", params=ALL | params)
    assert resp.status_code == 400 and resp.json()["message"]


def test_fake_cusips_are_stable_and_check_digit_valid():
    assert fake_cusip("AAPL") == fake_cusip("AAPL") != fake_cusip("MSFT")
    # real CUSIPs: Apple 037833100, Microsoft 594918104, Meta 30303M102
    assert [cusip_check_digit(b) for b in ("03783310", "59491810", "30303M10")] == ["0", "4", "2"]
    code = fake_cusip("AAPL")
    assert len(code) == 9 and code[-1] == cusip_check_digit(code[:8])
    stored = "3f6e1c9a-8a5b-4a53-9e4e-2f1b7a0c1d2e"
    assert served_id(stored) == stored
    assert served_id("fb-meta") == served_id("fb-meta") != served_id("a-split")
