"""Pursuit mode: ask the tag's supplier to raise (or lower again) the tag's reporting rate, posted to the
supplier's own webhook and signed with the supplier's newest key. A supplier without a webhook is skipped."""

from __future__ import annotations

import uuid
from typing import Any, Callable, Mapping, Sequence

import asyncpg

from notifications.channels import Delivery
from notifications.channels.webhook import SignedWebhook
from notifications.config import NotificationConfig


class SupplierPursuitWebhook(SignedWebhook):
    name = "supplier_webhook"

    def __init__(self, decrypt: Callable[[bytes], str], timeout_s: float = 10.0) -> None:
        super().__init__(timeout_s)
        self._decrypt = decrypt

    async def address(self, conn: asyncpg.Connection, rows: Sequence[Mapping[str, Any]]) -> list[Delivery | str]:
        tags: dict[uuid.UUID, list[asyncpg.Record]] = {}
        for t in await conn.fetch(
            "SELECT d.case_id, d.serial, s.webhook_url, k.key_id, k.secret_enc FROM devices d"
            " JOIN suppliers s ON s.id = d.supplier_id"
            " LEFT JOIN LATERAL (SELECT key_id, secret_enc FROM supplier_keys WHERE supplier_id = s.id"
            "   AND revoked_at IS NULL ORDER BY created_at DESC LIMIT 1) k ON true"
            " WHERE d.case_id = ANY($1) AND d.role = 'offender_tag' AND d.revoked_at IS NULL",
            list({r["case_id"] for r in rows}),
        ):
            tags.setdefault(t["case_id"], []).append(t)
        out: list[Delivery | str] = []
        for r in rows:
            candidates = [t for t in tags.get(r["case_id"], []) if t["webhook_url"] and t["key_id"]]
            if not candidates:
                out.append("no_supplier_webhook")
                continue
            t, mkey, p = candidates[0], str(r["message_key"]), r["payload"]
            pursuit = r["purpose"] == "pursuit_on"
            out.append(Delivery(mkey, t["webhook_url"], json_body={
                "type": "reporting_rate", "idempotency_key": mkey, "alert_id": p["alert_id"],
                "serials": sorted(x["serial"] for x in candidates if x["webhook_url"] == t["webhook_url"]),
                "mode": "pursuit" if pursuit else "normal",
                "interval_s": int(p.get("interval_s") or 15) if pursuit else None,
            }, signing_key_id=t["key_id"], signing_secret=self._decrypt(t["secret_enc"])))
        return out


def build(config: NotificationConfig, decrypt: Callable[[bytes], str]) -> SupplierPursuitWebhook:
    return SupplierPursuitWebhook(decrypt, config.webhook_timeout_s)
