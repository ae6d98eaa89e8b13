"""The police control room: an escalated alert, posted to its signed webhook (AFSTAND_POLICE_WEBHOOK_URL)."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import asyncpg

from notifications.channels import Delivery
from notifications.channels.webhook import SignedWebhook
from notifications.clock import iso
from notifications.config import NotificationConfig, WebhookTarget


class PoliceWebhook(SignedWebhook):
    name = "police_webhook"

    def __init__(self, target: WebhookTarget, timeout_s: float = 10.0) -> None:
        super().__init__(timeout_s)
        self._target = target

    async def address(self, conn: asyncpg.Connection, rows: Sequence[Mapping[str, Any]]) -> list[Delivery | str]:
        alerts = {r["id"]: r for r in await conn.fetch(
            "SELECT a.id, a.kind, a.level, a.confidence, a.status, a.opened_at, c.reference"
            " FROM alerts a JOIN cases c ON c.id = a.case_id WHERE a.id = ANY($1)",
            list({r["alert_id"] for r in rows if r["alert_id"] is not None}))}
        out: list[Delivery | str] = []
        for r in rows:
            a = alerts.get(r["alert_id"])
            if a is None:
                out.append("not_configured")
                continue
            mkey, p = str(r["message_key"]), r["payload"]
            out.append(Delivery(mkey, self._target.url, json_body={
                "type": "escalation", "idempotency_key": mkey, "alert_id": str(a["id"]),
                "case_reference": a["reference"], "kind": a["kind"], "level": a["level"],
                "confidence": a["confidence"], "status": a["status"], "opened_at": iso(a["opened_at"]),
                "escalated_by": p.get("actor"), "reason": p.get("reason") or None,
            }, signing_key_id=self._target.key_id, signing_secret=self._target.secret))
        return out


def build(config: NotificationConfig, decrypt: Callable[[bytes], str]) -> PoliceWebhook | None:  # noqa: ARG001
    return PoliceWebhook(config.police, config.webhook_timeout_s) if config.police else None
