"""Test-side clients that speak the contract exactly as suppliers, victim apps and operators do."""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi.testclient import TestClient

from api.auth.principals import mint_staff_token, sign


def staff_headers(client: TestClient, role: str = "admin", sub: str | None = None) -> dict[str, str]:
    token = mint_staff_token(client.app.state.ctx.key, role, sub or f"test-{role}")
    return {"Authorization": f"Bearer {token}"}


def signed(key_id: str, secret: str, body: Any, timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return raw, {
        "X-Afstand-Key": key_id,
        "X-Afstand-Timestamp": ts,
        "X-Afstand-Signature": sign(secret, ts, raw),
        "Content-Type": "application/json",
    }


def problem(r, status: int, loc: list | None = None) -> dict:  # type: ignore[no-untyped-def,type-arg]
    """The RFC 9457 document of a ``status`` answer; with ``loc``, one of its errors names that field."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"]
    if loc is not None:
        assert loc in [e["loc"] for e in body["errors"]], body
    return body
