"""Staff notices (reminders, expiries, digests, the agency queue), posted to a signed webhook
(AFSTAND_STAFF_WEBHOOK_URL) when one is configured; without it they are only listed in the API."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import asyncpg

from notifications.channels import Delivery
from notifications.channels.webhook import ConfiguredWebhook
from notifications.config import NotificationConfig


class StaffWebhook(ConfiguredWebhook):
    name = "staff_webhook"

    async def address(self, conn: asyncpg.Connection, rows: Sequence[Mapping[str, Any]]) -> list[Delivery | str]:
        return [self.signed(str(r["message_key"]), {
            "type": "staff_notice", "idempotency_key": str(r["message_key"]), **r["payload"],
        }) for r in rows]


def build(config: NotificationConfig, decrypt: Callable[[bytes], str]) -> StaffWebhook | None:  # noqa: ARG001
    return StaffWebhook(config.staff, config.webhook_timeout_s) if config.staff else None
