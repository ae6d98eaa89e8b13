"""/metrics reveals load and alert counts: it can require a bearer token (AFSTAND_METRICS_TOKEN) or be served
only on its own listener (AFSTAND_METRICS_PORT), away from the public API. Without either it stays open."""

from __future__ import annotations

import httpx

from tests.e2e.server import free_port

TOKEN = "scrape-" + "x" * 24


def test_metrics_require_the_token_when_one_is_set(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(run_engine=False, metrics_token=TOKEN)
    for headers in ({}, {"Authorization": "Bearer wrong-token-of-some-length"}, {"Authorization": TOKEN}):
        r = client.get("/metrics", headers=headers)
        assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")
        assert r.headers["www-authenticate"] == "Bearer"
    r = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and "afstand_" in r.text


def test_metrics_on_a_separate_listener_leave_the_api(make_client) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    client = make_client(run_engine=False, metrics_port=port)
    assert client.get("/metrics").status_code == 404
    r = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert r.status_code == 200 and "afstand_" in r.text


def test_metrics_are_open_by_default(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(run_engine=False)
    assert client.get("/metrics").status_code == 200
