"""The police control room: an escalated alert, posted to its signed webhook (AFSTAND_POLICE_WEBHOOK_URL)."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import asyncpg

from notifications.channels import Delivery, address_each
from notifications.channels.webhook import ConfiguredWebhook
from notifications.clock import iso
from notifications.config import NotificationConfig


class PoliceWebhook(ConfiguredWebhook):
    name = "police_webhook"

    async def address(self, conn: asyncpg.Connection, rows: Sequence[Mapping[str, Any]]) -> list[Delivery | str]:
        alerts = {r["id"]: r for r in await conn.fetch(
            "SELECT a.id, a.kind, a.level, a.confidence, a.status, a.opened_at, c.reference"
            " FROM alerts a JOIN cases c ON c.id = a.case_id WHERE a.id = ANY($1)",
            list({r["alert_id"] for r in rows if r["alert_id"] is not None}))}

        def deliver(r: Mapping[str, Any], a: asyncpg.Record) -> Delivery:
            mkey, p = str(r["message_key"]), r["payload"]
            return self.signed(mkey, {
                "type": "escalation", "idempotency_key": mkey, "alert_id": str(a["id"]),
                "case_reference": a["reference"], "kind": a["kind"], "level": a["level"],
                "confidence": a["confidence"], "status": a["status"], "opened_at": iso(a["opened_at"]),
                "escalated_by": p.get("actor"), "reason": p.get("reason") or None,
            })

        return address_each(rows, "alert_id", alerts, "not_configured", deliver)


def build(config: NotificationConfig, decrypt: Callable[[bytes], str]) -> PoliceWebhook | None:  # noqa: ARG001
    return PoliceWebhook(config.police, config.webhook_timeout_s) if config.police else None
