"""X-Forwarded-For is believed only from the proxies listed in AFSTAND_TRUSTED_PROXIES (default: none). Tested on
``afstand serve`` itself, over real sockets from 127.0.0.1: the address uvicorn trusts by default, through which
any local client (or a proxy that passes the header on) used to choose its own rate-limit bucket."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.e2e.server import ServerProcess

LIMITS = {"AFSTAND_RATE_LIMIT_BURST": "2", "AFSTAND_RATE_LIMIT_PER_MIN": "1"}


def _token_statuses(server: ServerProcess, forwarded: list[str]) -> list[int]:
    with httpx.Client(base_url=server.base, timeout=10) as http:
        return [http.post("/v1/me/token", json={"refresh_token": "guess"},
                          headers={"X-Forwarded-For": xff}).status_code for xff in forwarded]


def test_without_listed_proxies_the_header_cannot_dodge_the_rate_limit(database_url: str, tmp_path: Path) -> None:
    server = ServerProcess(database_url, tmp_path / "data", **LIMITS)
    server.start()
    try:
        statuses = _token_statuses(server, [f"10.0.0.{i}" for i in range(1, 5)])
    finally:
        server.stop()
    assert statuses == [401, 401, 429, 429]  # one bucket: the peer's, whatever the header says


def test_a_listed_proxy_names_the_client(database_url: str, tmp_path: Path) -> None:
    server = ServerProcess(database_url, tmp_path / "data", AFSTAND_TRUSTED_PROXIES="127.0.0.1, 10.8.0.0/16",
                           **LIMITS)
    server.start()
    try:
        # Four clients behind the proxy: each has its own bucket.
        apart = _token_statuses(server, [f"192.0.2.{i}" for i in range(1, 5)])
        # One client, however it decorates the header: the proxy appends the real address on the right, and the
        # walk from the right stops at the first address that is not a listed proxy.
        same = _token_statuses(server, ["198.51.100.7", "6.6.6.6, 198.51.100.7", "7.7.7.7, 198.51.100.7, 10.8.1.1"])
    finally:
        server.stop()
    assert apart == [401, 401, 401, 401]
    assert same == [401, 401, 429]
