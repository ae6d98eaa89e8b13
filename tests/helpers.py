"""Test-side clients that speak the contract exactly as suppliers, victim apps and operators do."""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi.testclient import TestClient

from api.auth import mint_staff_token, sign


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
