"""Transport behaviour: authentication, gzip, rate limiting, the request log, routing."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import http.client
import json

import httpx
import pytest

from aurora.errors import ConfigError
from aurora_testbed.emulator import EmulatorServer

PARAMS = {"symbols": "AAPL", "timeframe": "1Day", "start": "2023-01-03", "end": "2023-01-31"}


def _raw_get(url: str, path: str, headers: dict[str, str]) -> http.client.HTTPResponse:
    """A bare http.client request: nothing decodes or follows anything for us."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request("GET", path, headers=headers)
    return conn.getresponse()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"APCA-API-KEY-ID": "TESTKEY"},
        {"APCA-API-KEY-ID": "TESTKEY", "APCA-API-SECRET-KEY": "wrong"},
        {"APCA-API-KEY-ID": "OTHER", "APCA-API-SECRET-KEY": "test-secret-value"},
        {"APCA-API-SECRET-KEY": "test-secret-value"},
    ],
)
def test_missing_or_bad_credentials_are_401_json(server, headers, tls_context):
    resp = httpx.get(server.url + "/v2/stocks/bars", params=PARAMS, headers=headers,
                     verify=tls_context)
    assert resp.status_code == 401
    assert resp.json() == {"message": "unauthorized"}
    assert "X-RateLimit-Remaining" in resp.headers


def test_auth_failure_status_is_configurable_to_403(make_server, tls_context):
    srv = make_server(auth_failure_status=403)
    resp = httpx.get(srv.url + "/v2/stocks/bars", params=PARAMS, verify=tls_context)
    assert resp.status_code == 403 and resp.json() == {"message": "forbidden"}
    with pytest.raises(ConfigError):
        EmulatorServer(srv.market, {"K": "S"}, auth_failure_status=302)
    with pytest.raises(ConfigError):
        EmulatorServer(srv.market, {"K": "S"}, rate_limit_per_minute=0)
    with pytest.raises(ConfigError):
        EmulatorServer(srv.market, {})


def test_basic_auth_is_accepted(server, tls_context):
    token = base64.b64encode(b"TESTKEY:test-secret-value").decode()
    resp = httpx.get(server.url + "/v2/stocks/bars", params=PARAMS,
                     headers={"Authorization": f"Basic {token}"}, verify=tls_context)
    assert resp.status_code == 200


def test_gzip_only_when_asked_and_larger_than_256_bytes(server, auth):
    query = "/v2/stocks/bars?symbols=AAPL&timeframe=1Day&start=2023-01-03&end=2023-01-31"
    zipped = _raw_get(server.url, query, auth | {"Accept-Encoding": "gzip"})
    assert zipped.getheader("Content-Encoding") == "gzip"
    body = zipped.read()
    assert int(zipped.getheader("Content-Length")) == len(body)
    assert len(json.loads(gzip.decompress(body))["bars"]["AAPL"]) == 20
    plain = _raw_get(server.url, query, auth)
    assert plain.getheader("Content-Encoding") is None
    assert json.loads(plain.read()) == json.loads(gzip.decompress(body))
    small = _raw_get(server.url, query.replace("end=2023-01-31", "end=2023-01-03"),
                     auth | {"Accept-Encoding": "gzip"})
    small_body = small.read()
    assert len(small_body) <= 256 and small.getheader("Content-Encoding") is None
    json.loads(small_body)


def test_rate_limit_window_and_headers_on_every_response(make_server, auth, tls_context):
    now = [dt.datetime(2024, 3, 1, 15, 0, 10, tzinfo=dt.UTC)]
    srv = make_server(rate_limit_per_minute=3, clock=lambda: now[0])
    reset = str(int(dt.datetime(2024, 3, 1, 15, 1, tzinfo=dt.UTC).timestamp()))
    with httpx.Client(base_url=srv.url, headers=auth, verify=tls_context) as c:
        remaining = []
        for _ in range(3):
            resp = c.get("/v2/stocks/bars", params=PARAMS)
            assert resp.status_code == 200
            assert resp.headers["X-RateLimit-Limit"] == "3"
            assert resp.headers["X-RateLimit-Reset"] == reset
            remaining.append(resp.headers["X-RateLimit-Remaining"])
        assert remaining == ["2", "1", "0"]
        limited = c.get("/v2/stocks/bars", params=PARAMS)
        assert limited.status_code == 429
        assert limited.json()["message"]
        assert limited.headers["X-RateLimit-Remaining"] == "0"
        assert limited.headers["X-RateLimit-Reset"] == reset
        assert "Retry-After" not in limited.headers
        # a different key has its own window (and is then rejected by authentication)
        other = httpx.get(srv.url + "/v2/stocks/bars", params=PARAMS, verify=tls_context,
                          headers={"APCA-API-KEY-ID": "X", "APCA-API-SECRET-KEY": "Y"})
        assert other.status_code == 401 and other.headers["X-RateLimit-Remaining"] == "2"
        now[0] += dt.timedelta(seconds=50)  # 15:01:00: a new window
        again = c.get("/v2/stocks/bars", params=PARAMS)
        assert again.status_code == 200 and again.headers["X-RateLimit-Remaining"] == "2"


def test_request_log_records_requests_without_secret_values(server, client):
    client.get("/v2/stocks/bars", params=PARAMS | {"limit": 5})
    client.get("/v2/stocks/bars", params=PARAMS | {"timeframe": "bad"})
    log = server.request_log
    assert [(e.number, e.path, e.status) for e in log] == [
        (1, "/v2/stocks/bars", 200), (2, "/v2/stocks/bars", 400)]
    assert log[0].params == {k: str(v) for k, v in (PARAMS | {"limit": 5}).items()}
    assert log[0].headers["APCA-API-KEY-ID"] == "TESTKEY"
    assert log[0].headers["APCA-API-SECRET-KEY"] == "[redacted]"
    assert "test-secret-value" not in repr(log)
    assert log[0].time == dt.datetime(2024, 3, 1, 15, 0, tzinfo=dt.UTC)
    assert log[0].bytes > 0 and log[0].fault is None
    server.clear_log()
    assert server.request_log == []


def test_unknown_routes_are_404_json_and_nothing_redirects(server, auth):
    for path in ("/v2/stocks/bars/", "/v2/unknown", "/"):
        resp = _raw_get(server.url, path, auth)
        assert resp.status == 404
        assert json.loads(resp.read()) == {"message": "not found"}
    resp = httpx.post(server.url + "/v2/stocks/bars", headers=auth)
    assert resp.status_code == 405


def test_each_server_binds_loopback_on_its_own_free_port(make_server):
    a, b = make_server(), make_server()
    assert a.url.startswith("http://127.0.0.1:") and a.url != b.url
    a.stop()
    a.stop()  # idempotent
    with pytest.raises(httpx.ConnectError):
        httpx.get(a.url + "/v2/stocks/bars", timeout=2)
