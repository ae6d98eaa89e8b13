"""Health, readiness, metrics, problem details and security headers of the running app."""

from __future__ import annotations

import time

from tests.helpers import staff_headers


def test_health_ready_and_metrics(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client()
    assert client.get("/healthz").json() == {"status": "ok"}
    # Ready once the engine's first pass over the log is done: a fraction of a second on an empty log.
    deadline = time.monotonic() + 10
    while (ready := client.get("/readyz")).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {
        "database": True, "migrations": True, "leases": True, "engine_owned": True,
        "engine": True, "engine_config": True, "engine_log_lag": True,
        "listener:alert_stream": True, "listener:engine": True, "listener:dispatcher": True, "dispatcher": True}
    assert ready.json()["unwell"] == []
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    for name in ("afstand_fixes_total", "afstand_alerts_total", "afstand_fix_to_alert_seconds",
                 "afstand_outbox_depth", "afstand_delivery_failures_total", "afstand_engine_config_lag_seconds",
                 "afstand_engine_log_lag_seconds", "afstand_listener_reconnects_total", "afstand_listener_up",
                 "afstand_partitions_owned", "afstand_lease_renewals_total", "afstand_failovers_total"):
        assert name in metrics.text


def test_unknown_route_is_a_problem_document_with_security_headers(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(run_engine=False)
    r = client.get("/v1/nothing-here")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert {"type", "title", "status", "detail"} <= r.json().keys()
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert "access-control-allow-origin" not in r.headers


def test_cross_origin_preflight_is_not_allowed(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(run_engine=False)
    r = client.options("/v1/alerts", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in r.headers


def test_bad_token_is_401_problem(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(run_engine=False)
    r = client.get("/v1/alerts", headers={"Authorization": "Bearer not-a-jwt"})
    assert r.status_code == 401 and r.json()["title"] == "Unauthorized"
    assert client.get("/v1/alerts", headers=staff_headers(client, "operator")).status_code == 200


def test_openapi_document_is_served(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(run_engine=False)
    doc = client.get("/openapi.json").json()
    assert doc["info"]["title"] == "Afstand"
    assert "/v1/alerts" in doc["paths"]
