"""Staff notices (reminders, expiries, digests, the agency queue), posted to a signed webhook
(AFSTAND_STAFF_WEBHOOK_URL) when one is configured; without it they are only listed in the API."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import asyncpg

from notifications.channels import Delivery
from notifications.channels.webhook import SignedWebhook
from notifications.config import NotificationConfig, WebhookTarget


class StaffWebhook(SignedWebhook):
    name = "staff_webhook"

    def __init__(self, target: WebhookTarget, timeout_s: float = 10.0) -> None:
        super().__init__(timeout_s)
        self._target = target

    async def address(self, conn: asyncpg.Connection, rows: Sequence[Mapping[str, Any]]) -> list[Delivery | str]:
        return [Delivery(str(r["message_key"]), self._target.url, json_body={
            "type": "staff_notice", "idempotency_key": str(r["message_key"]), **r["payload"],
        }, signing_key_id=self._target.key_id, signing_secret=self._target.secret) for r in rows]


def build(config: NotificationConfig, decrypt: Callable[[bytes], str]) -> StaffWebhook | None:  # noqa: ARG001
    return StaffWebhook(config.staff, config.webhook_timeout_s) if config.staff else None
