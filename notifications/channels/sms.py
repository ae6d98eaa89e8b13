"""SMS to the victim through a generic HTTP gateway: the fallback when push cannot reach her.

The address is the phone number staff stored in the case's notification policy. ``POST {url}`` with
``{"to", "from", "text", "reference"}`` and a bearer key; 2xx is accepted (``id`` in the answer kept as provider
id); 429/5xx/timeouts retry (``Retry-After`` honoured); any other 4xx is a permanent failure (e.g. an invalid
number).
"""

from __future__ import annotations

import json
from typing import Any, Callable, Mapping, Sequence

import asyncpg

from notifications import catalogue
from notifications.channels import Delivery, Outcome, address_each, victim_message
from notifications.channels.webhook import HttpChannel
from notifications.config import NotificationConfig


class SmsGatewayChannel(HttpChannel):
    name = "sms"

    def __init__(self, url: str, api_key: str | None, sender: str = "Afstand", timeout_s: float = 10.0) -> None:
        super().__init__(timeout_s)
        self._url = url
        self._key = api_key
        self._sender = sender

    async def address(self, conn: asyncpg.Connection, rows: Sequence[Mapping[str, Any]]) -> list[Delivery | str]:
        phones = {r["case_id"]: r["victim_phone"] for r in await conn.fetch(
            "SELECT case_id, victim_phone FROM notification_policies WHERE case_id = ANY($1)"
            " AND victim_phone <> ''", list({r["case_id"] for r in rows}))}

        def deliver(r: Mapping[str, Any], phone: str) -> Delivery:
            language, title, body, data = victim_message(r)
            return Delivery(str(r["message_key"]), phone, title, catalogue.sms_text(language, title, body), data,
                            bool(r["safety"]))

        return address_each(rows, "case_id", phones, "no_phone_number", deliver)

    async def send(self, d: Delivery) -> Outcome:
        body = json.dumps({"to": d.address, "from": self._sender, "text": d.body, "reference": d.idempotency_key},
                          ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": d.idempotency_key}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        outcome = await self._post(self._url, body, headers)
        if outcome.result == "failed" and outcome.reason in ("http_400", "http_404", "http_422"):
            return Outcome("failed", outcome.reason, invalid_address=True)
        return outcome


def build(config: NotificationConfig, decrypt: Callable[[bytes], str]) -> SmsGatewayChannel | None:  # noqa: ARG001
    if config.sms is None:
        return None
    return SmsGatewayChannel(config.sms.url, config.sms.api_key, config.sms.sender, config.webhook_timeout_s)
