"""Each input that used to answer 500, pinned: after the fix each is a 4xx problem document naming the field.
The classes behind them (client times, cursors, headers, nesting) are fuzzed in test_hostile_http.py."""

from __future__ import annotations

import base64
import time

import pytest
from starlette.websockets import WebSocketDisconnect

from api.auth.principals import sign
from tests.api.factories import fix, world
from tests.helpers import problem, staff_headers

YEAR_1 = "0001-01-01T00:00:00+14:00"  # before year 1 once in UTC
YEAR_9999 = "9999-12-31T23:59:59-14:00"  # after year 9999 once in UTC


@pytest.fixture
def api(make_client):  # type: ignore[no-untyped-def]
    client = make_client(run_engine=False, notify_enabled=False)
    client._transport.raise_server_exceptions = False
    return client, world(client)


@pytest.mark.parametrize("headers", [
    {"X-Afstand-Timestamp": "9" * 400, "X-Afstand-Signature": "0" * 64},
    {"X-Afstand-Signature": "é".encode("latin-1") * 64},
    {"X-Afstand-Signature": ("٣" * 64).encode()},  # 64 digits, not ASCII ones
])
def test_hmac_headers_of_any_form_are_401(api, headers) -> None:  # type: ignore[no-untyped-def]
    client, w = api
    base = {"X-Afstand-Key": w.supplier.key_id, "X-Afstand-Timestamp": str(int(time.time())),
            "X-Afstand-Signature": "0" * 64, "Content-Type": "application/json"}
    problem(client.post("/v1/ingest/positions", content=b'{"positions": []}', headers={**base, **headers}), 401)


@pytest.mark.parametrize("path", ["/v1/ingest/positions", "/v1/me/positions"])
def test_deeply_nested_json_is_422(api, path: str) -> None:  # type: ignore[no-untyped-def]
    client, w = api
    raw = b'{"positions": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}"
    if path.startswith("/v1/ingest"):
        ts = str(int(time.time()))
        r = client.post(path, content=raw, headers={"X-Afstand-Key": w.supplier.key_id, "X-Afstand-Timestamp": ts,
                                                    "X-Afstand-Signature": sign(w.supplier.secret, ts, raw),
                                                    "Content-Type": "application/json"})
    else:
        r = client.post(path, content=raw, headers={**w.victim, "Content-Type": "application/json"})
    assert problem(r, 422, ["body"])["errors"][0]["msg"] == "the JSON nests too deeply"


def test_positions_at_the_ends_of_the_calendar_are_rejected_per_item(api) -> None:  # type: ignore[no-untyped-def]
    client, w = api
    r = w.supplier.positions(client, [{**fix(w.serial), "recorded_at": YEAR_1}, fix(w.serial, 10)])
    assert [x["status"] for x in r.json()["results"]] == ["rejected", "accepted"]
    assert "out of range" in r.json()["results"][0]["error"]


@pytest.mark.parametrize("valid_from, valid_until, field", [
    (YEAR_1, None, "valid_from"), ("2026-01-01T00:00:00Z", YEAR_9999, "valid_until"), (YEAR_9999, None, "valid_from"),
    ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "valid_from"),
])
def test_order_dates_beyond_the_calendar_are_422(api, valid_from, valid_until, field: str) -> None:  # type: ignore[no-untyped-def]
    client, w = api
    for kind in ("contact_ban", "behavioural_order"):
        problem(client.post(f"/v1/cases/{w.case_id}/orders", headers=staff_headers(client, "case_director"), json={
            "kind": kind, "reference": "OM-1", "valid_from": valid_from, "valid_until": valid_until}), 422, [field])


def test_cursors_holding_anything_are_422(api) -> None:  # type: ignore[no-untyped-def]
    client, w = api
    dated = base64.urlsafe_b64encode(f"{YEAR_1}|00000000-0000-0000-0000-000000000000".encode()).decode().rstrip("=")
    admin = staff_headers(client)
    problem(client.get("/v1/cases", params={"cursor": dated}, headers=admin), 422, ["query", "cursor"])
    problem(client.get("/v1/me/alerts", params={"cursor": dated}, headers=w.victim), 422, ["query", "cursor"])
    for cursor in ("9" * 30, "²", "-1"):
        problem(client.get("/v1/alerts", params={"cursor": cursor}, headers=admin), 422, ["query", "cursor"])
    problem(client.get(f"/v1/cases/{w.case_id}/track", headers=admin,
                       params={"from": YEAR_1, "to": "2026-01-01T00:00:00Z", "reason": "review"}), 422, ["query", "from"])
    problem(client.get("/v1/audit", params={"since": YEAR_9999}, headers=staff_headers(client, "auditor")), 422,
            ["query", "since"])


def test_a_stream_position_beyond_a_bigint_closes_as_a_client_error(api) -> None:  # type: ignore[no-untyped-def]
    """The alert stream's ``after`` is a seq: 30 digits used to reach PostgreSQL and fail the handler (1011)."""
    client, _ = api
    with pytest.raises(WebSocketDisconnect) as closed:
        with client.websocket_connect("/v1/alerts/stream?after=" + "9" * 30,
                                      headers=staff_headers(client, "operator")) as ws:
            ws.receive_json()
    assert closed.value.code == 1008  # policy violation: the request, not the server
