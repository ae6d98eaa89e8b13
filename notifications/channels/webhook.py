"""What the HTTP channels share: a client, classifying answers, and signed webhooks (police control room,
supplier pursuit mode, staff notices).

Webhooks are signed exactly as suppliers sign to us (CONTRACT.md, Supplier API): ``X-Afstand-Key``,
``X-Afstand-Timestamp`` and ``X-Afstand-Signature: hex(HMAC-SHA256(secret, TIMESTAMP + "." + RAW_BODY))``,
plus an ``Idempotency-Key`` header the receiver can dedupe on.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import datetime
from typing import Any

import asyncpg
import httpx

from notifications.channels import Delivery, Outcome, retry_after
from notifications.config import WebhookTarget


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def classify(resp: httpx.Response) -> Outcome:
    if 200 <= resp.status_code < 300:
        provider_id = None
        try:
            doc = resp.json()
            if isinstance(doc, dict) and doc.get("id") is not None:
                provider_id = str(doc["id"])[:200]
        except ValueError:
            pass
        return Outcome("sent", provider_id=provider_id)
    after = retry_after(resp.headers.get("Retry-After"))
    if resp.status_code in (408, 409, 425, 429) or resp.status_code >= 500:
        return Outcome("retry", f"http_{resp.status_code}", retry_after_s=after)
    return Outcome("failed", f"http_{resp.status_code}")


class HttpChannel:
    """An HTTP client shared by the channels that POST (webhooks, the SMS gateway)."""

    def __init__(self, timeout_s: float = 10.0, max_connections: int = 32) -> None:
        self._http = httpx.AsyncClient(
            timeout=timeout_s, limits=httpx.Limits(max_connections=max_connections), follow_redirects=False
        )

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> Outcome:
        try:
            resp = await self._http.post(url, content=body, headers=headers)
        except httpx.TimeoutException:
            return Outcome("retry", "timeout")
        except httpx.HTTPError as e:
            return Outcome("retry", type(e).__name__)
        return classify(resp)

    async def forget_address(self, conn: asyncpg.Connection, delivery: Delivery, reason: str | None,
                             now: datetime) -> None:
        """A configured URL or a phone number is not ours to clear: the failure is dead-lettered and shown."""

    async def close(self) -> None:
        await self._http.aclose()


class SignedWebhook(HttpChannel):
    """POST ``delivery.json_body`` to ``delivery.address``, HMAC-signed with the delivery's key. Each receiver
    (police, supplier, staff) is a subclass that knows its address and its body."""

    async def send(self, d: Delivery) -> Outcome:
        body = json.dumps(d.json_body or {}, separators=(",", ":"), sort_keys=True).encode()
        ts = str(int(time.time()))
        headers = {"Content-Type": "application/json", "Idempotency-Key": d.idempotency_key}
        if d.signing_key_id and d.signing_secret:
            headers.update({
                "X-Afstand-Key": d.signing_key_id,
                "X-Afstand-Timestamp": ts,
                "X-Afstand-Signature": sign(d.signing_secret, ts, body),
            })
        return await self._post(d.address, body, headers)


class ConfiguredWebhook(SignedWebhook):
    """A webhook whose receiver is configured (police, staff): one URL and our key for it."""

    def __init__(self, target: WebhookTarget, timeout_s: float = 10.0) -> None:
        super().__init__(timeout_s)
        self._target = target

    def signed(self, idempotency_key: str, body: dict[str, Any]) -> Delivery:
        return Delivery(idempotency_key, self._target.url, json_body=body, signing_key_id=self._target.key_id,
                        signing_secret=self._target.secret)
