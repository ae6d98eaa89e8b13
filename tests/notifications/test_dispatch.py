"""The outbox and dispatcher against a real PostgreSQL, the real firebase-admin code and fake providers on
127.0.0.1, with time driven by an injected clock."""

from __future__ import annotations

import asyncio
import json

from notifications.channels.fcm import FcmChannel
from notifications.channels.webhook import SmsGatewayChannel, WebhookChannel
from notifications.clock import ManualClock
from tests.notifications import support as s
from tests.notifications.fakes import FakeServer


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_violation_reaches_fake_fcm_with_the_right_request(database_url: str) -> None:
    async def main() -> None:
        clock = ManualClock(s.T0)
        pool = await s.pool_for(database_url, clock)
        with FakeServer() as fcm:
            push = FcmChannel(project_id="afstand-test", url=fcm.fcm_url, timeout_s=2)
            try:
                async with pool.acquire() as conn:
                    case_id = await s.make_case(conn, language="nl")
                alert_id = await s.open_alert(pool, case_id)
                d = s.dispatcher(pool, {"push": push}, clock)
                assert await d.run_once() >= 1
                assert len(fcm.received) == 1
                req = fcm.received[0]
                assert req.path == "/v1/projects/afstand-test/messages:send"
                msg = req.json["message"]
                assert msg["fid"] == "tok-victim-1"
                assert msg["notification"]["title"] == "Veiligheidsmelding"
                data = msg["data"]
                assert data["alert_id"] == str(alert_id) and data["kind"] == "proximity"
                assert data["level"] == "violation" and data["purpose"] == "violation"
                row = (await s.rows(pool, "channel = 'push'"))[0]
                assert data["idempotency_key"] == str(row["message_key"])
                assert msg["android"]["priority"] == "high" and msg["android"]["ttl"] == "60s"
                assert msg["android"]["collapse_key"] == data["idempotency_key"]
                apns = msg["apns"]
                assert apns["headers"]["apns-priority"] == "10" and apns["headers"]["apns-push-type"] == "alert"
                assert apns["headers"]["apns-collapse-id"] == data["idempotency_key"]
                assert apns["payload"]["aps"]["interruption-level"] == "time-sensitive"
                assert row["status"] == "sent" and row["attempts"] == 1
                assert "notified" in await s.changes(pool, alert_id)
                from api.alert_store import fetch_alert
                alert = await fetch_alert(pool, alert_id)
                assert alert is not None
                [delivery] = [x for x in alert["deliveries"] if x["channel"] == "push"]
                assert delivery["status"] == "sent" and delivery["recipient"] == "victim"
            finally:
                await push.close()
                await pool.close()

    run(main())
