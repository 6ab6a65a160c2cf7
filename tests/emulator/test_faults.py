"""Each scriptable fault, observed from a real HTTP client."""

from __future__ import annotations

import datetime as dt
import threading
import time

import httpx
import pytest

from aurora_testbed.emulator import FaultPlan

PAGE = {"symbols": "AAPL,MSFT", "timeframe": "1Day", "start": "2023-01-01",
        "end": "2023-03-31", "limit": 50}


def test_rate_limit_burst_of_n_consecutive_429s(server, client):
    server.faults.rate_limit_burst(3, at_request=2)
    statuses, remaining = [], []
    for _ in range(5):
        resp = client.get("/v2/stocks/bars", params=PAGE)
        statuses.append(resp.status_code)
        remaining.append(resp.headers["X-RateLimit-Remaining"])
        assert resp.headers["X-RateLimit-Limit"] == "200"
        assert resp.headers["X-RateLimit-Reset"] == str(
            int(dt.datetime(2024, 3, 1, 15, 1, tzinfo=dt.UTC).timestamp()))
        assert ("message" in resp.json()) == (resp.status_code == 429)
    assert statuses == [200, 429, 429, 429, 200]
    assert remaining == ["199", "0", "0", "0", "195"]
    assert [e.fault for e in server.request_log] == [None, "rate_limit:429", "rate_limit:429",
                                                     "rate_limit:429", None]
    assert server.faults.pending() == 0


def test_burst_with_retry_after_header(server, client):
    server.faults.rate_limit_burst(1, retry_after=2)
    resp = client.get("/v2/stocks/bars", params=PAGE)
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "2"


@pytest.mark.parametrize("status", [500, 502, 504])
def test_server_errors_with_json_bodies(server, client, status):
    server.faults.error(status)
    resp = client.get("/v2/stocks/bars", params=PAGE)
    assert resp.status_code == status
    assert isinstance(resp.json()["message"], str)
    assert "X-RateLimit-Remaining" in resp.headers
    assert client.get("/v2/stocks/bars", params=PAGE).status_code == 200


def test_html_error_body_is_not_json(server, client):
    server.faults.error(502, body="html", count=2)
    for _ in range(2):
        resp = client.get("/v2/stocks/bars", params=PAGE)
        assert resp.status_code == 502
        assert resp.headers["content-type"].startswith("text/html")
        assert resp.text.startswith("<html>") and "502 Bad Gateway" in resp.text
    assert client.get("/v2/stocks/bars", params=PAGE).status_code == 200


def test_faults_match_on_path_pattern(server, client):
    server.faults.error(500, path=r"^/v1/corporate-actions$", count=5)
    assert client.get("/v2/stocks/bars", params=PAGE).status_code == 200
    assert client.get("/v1/corporate-actions", params={"start": "2022-01-01"}).status_code == 500
    assert server.faults.pending() == 4


def test_slow_response_trips_a_client_timeout(server, auth, tls_context):
    server.faults.slow(0.6, at_request=1)
    with (httpx.Client(base_url=server.url, headers=auth, timeout=0.2, verify=tls_context) as c,
          pytest.raises(httpx.ReadTimeout)):
        c.get("/v2/stocks/bars", params=PAGE)
    with httpx.Client(base_url=server.url, headers=auth, timeout=5, verify=tls_context) as c:
        assert c.get("/v2/stocks/bars", params=PAGE).status_code == 200
    deadline = time.monotonic() + 5
    while len(server.request_log) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)  # the slow request is logged when its handler finishes
    slow = server.request_log[0]
    assert slow.number == 1 and slow.fault == "slow:0.6s" and slow.duration_s >= 0.6


def test_dropped_connection_mid_pagination_without_response(server, client):
    first = client.get("/v2/stocks/bars", params=PAGE).json()
    server.faults.drop_connection(at_request=2)
    query = PAGE | {"page_token": first["next_page_token"]}
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("/v2/stocks/bars", params=query)
    resumed = client.get("/v2/stocks/bars", params=query)  # the token still works
    assert resumed.status_code == 200
    assert resumed.json()["bars"]["AAPL"][0]["t"] > first["bars"]["AAPL"][-1]["t"]
    assert [e.status for e in server.request_log] == [200, None, 200]


def test_dropped_connection_after_headers_and_half_the_body(server, client):
    server.faults.drop_connection(mode="partial_body")
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("/v2/stocks/bars", params=PAGE)
    entry = server.request_log[0]
    assert entry.status == 200 and entry.fault == "drop:partial_body" and entry.bytes > 0
    assert client.get("/v2/stocks/bars", params=PAGE).status_code == 200


def test_revised_bar_between_two_calls(server, client, market):
    day = dt.date(2023, 1, 5)
    raw = market.bars.filter(symbol="AAPL", date=day).row(0, named=True)
    query = {"symbols": "AAPL", "timeframe": "1Day", "start": "2023-01-05", "end": "2023-01-05"}
    server.faults.revise_bar("AAPL", day, 1.25, from_request=2)
    before = client.get("/v2/stocks/bars", params=query).json()["bars"]["AAPL"][0]
    after = client.get("/v2/stocks/bars", params=query).json()["bars"]["AAPL"][0]
    assert before["c"] == raw["close"]
    assert after["c"] == pytest.approx(raw["close"] * 1.25)
    assert after["h"] == max(raw["high"], after["c"])  # the bar stays consistent
    assert (after["o"], after["l"], after["v"]) == (before["o"], before["l"], before["v"])
    other = client.get("/v2/stocks/bars", params=query | {"start": "2023-01-04",
                                                          "end": "2023-01-04"}).json()
    assert other["bars"]["AAPL"][0]["c"] == market.bars.filter(
        symbol="AAPL", date=dt.date(2023, 1, 4))["close"][0]


def test_lenient_switch_drops_n_and_vw_and_adds_unknown_keys(server, client):
    server.faults.set_lenient_bars()
    bar = client.get("/v2/stocks/bars", params=PAGE).json()["bars"]["AAPL"][0]
    assert set(bar) == {"t", "o", "h", "l", "c", "v", "x", "unknown_field"}
    server.faults.set_lenient_bars(False)
    bar = client.get("/v2/stocks/bars", params=PAGE).json()["bars"]["AAPL"][0]
    assert set(bar) == {"t", "o", "h", "l", "c", "v", "n", "vw"}


def test_fault_plan_is_safe_to_change_from_another_thread(server, client):
    plan: FaultPlan = server.faults
    adders = [threading.Thread(target=plan.error, args=(500,), kwargs={"path": "^/nowhere$"})
              for _ in range(20)]
    for t in adders:
        t.start()
    for t in adders:
        t.join()
    assert plan.pending() == 20
    assert client.get("/v2/stocks/bars", params=PAGE).status_code == 200
    plan.clear()
    assert plan.pending() == 0


def test_fault_plan_rejects_nonsense():
    plan = FaultPlan()
    with pytest.raises(ValueError):
        plan.error(418)
    with pytest.raises(ValueError):
        plan.rate_limit_burst(0)
    with pytest.raises(ValueError):
        plan.drop_connection(mode="sometimes")  # type: ignore[arg-type]
