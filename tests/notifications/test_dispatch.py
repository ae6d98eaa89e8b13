"""The outbox and dispatcher against a real PostgreSQL, the real FCM channel and fake providers on
127.0.0.1, with time driven by an injected clock."""

from __future__ import annotations

import asyncio
import dataclasses
import json

from notifications.channels.fcm import FcmChannel
from notifications.channels.police import PoliceWebhook
from notifications.channels.sms import SmsGatewayChannel
from notifications.channels.supplier import SupplierPursuitWebhook
from notifications.clock import ManualClock
from notifications.config import WebhookTarget
from tests.notifications import support as s
from tests.notifications.fakes import FakeServer


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_violation_reaches_fake_fcm_with_the_right_request(database_url: str) -> None:
    async def main() -> None:
        clock = ManualClock(s.T0)
        outbox = s.outbox_for(clock)
        pool = await s.pool_for(database_url)
        with FakeServer() as fcm:
            push = FcmChannel(project_id="afstand-test", url=fcm.fcm_url, timeout_s=2)
            try:
                async with pool.acquire() as conn:
                    case_id = await s.make_case(conn, language="nl")
                alert_id = await s.open_alert(outbox, pool, case_id)
                d = s.dispatcher(pool, outbox, [push])
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
                from api.alerts.repository import fetch_alert
                alert = await fetch_alert(pool, alert_id)
                assert alert is not None
                [delivery] = [x for x in alert["deliveries"] if x["channel"] == "push"]
                assert delivery["status"] == "sent" and delivery["recipient"] == "victim"
            finally:
                await push.close()
                await pool.close()

    run(main())


class Env:
    """A database pool, a manual clock, fake FCM / SMS / police servers and a dispatcher wired to them."""

    def __init__(self, database_url: str, deadline_s: float = 900.0, fcm_timeout_s: float = 2.0) -> None:
        self.url = database_url
        self.deadline_s = deadline_s
        self.fcm_timeout_s = fcm_timeout_s

    async def __aenter__(self) -> "Env":
        self.clock = ManualClock(s.T0)
        self.outbox = s.outbox_for(self.clock, self.deadline_s)
        self.pool = await s.pool_for(self.url)
        self.fcm = FakeServer()
        self.sms = FakeServer(kind="http")
        self.police = FakeServer(kind="http")
        self.push = FcmChannel(project_id="afstand-test", url=self.fcm.fcm_url, timeout_s=self.fcm_timeout_s)
        self.channels = [
            self.push,
            SmsGatewayChannel(self.sms.base + "/sms", "sms-key"),
            PoliceWebhook(WebhookTarget(self.police.base + "/escalations", "afstand-nl", "police-secret")),
            SupplierPursuitWebhook(s.decrypt),
        ]
        self.d = s.dispatcher(self.pool, self.outbox, self.channels)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for ch in self.channels:
            await ch.close()
        for f in (self.fcm, self.sms, self.police):
            f.close()
        await self.pool.close()

    async def case(self, **kw) -> object:  # type: ignore[no-untyped-def]
        async with self.pool.acquire() as conn:
            return await s.make_case(conn, **kw)

    async def advance(self, seconds: float, step: float = 1.0) -> None:
        """Move time forward in steps, running the dispatcher at each step (what the live loop does)."""
        moved = 0.0
        while moved < seconds:
            self.clock.advance(step)
            moved += step
            await self.d.drain()


def test_quota_exceeded_honours_retry_after_then_delivers(database_url: str) -> None:
    async def main() -> None:
        async with Env(database_url) as e:
            e.fcm.script = ["quota"]
            case_id = await e.case()
            await s.open_alert(e.outbox, e.pool, case_id)
            await e.d.drain()
            [row] = await s.rows(e.pool, "channel = 'push'")
            assert row["status"] == "queued" and row["last_error"] == "quota_exceeded"
            assert (row["next_attempt_at"] - s.T0).total_seconds() >= 7  # Retry-After: 7
            await e.advance(6)
            assert len(e.fcm.received) == 1
            await e.advance(2)
            [row] = await s.rows(e.pool, "channel = 'push'")
            assert row["status"] == "sent" and row["attempts"] == 2 and len(e.fcm.received) == 2
            attempts = await e.pool.fetch("SELECT outcome, reason, retry_after_s FROM delivery_attempts"
                                          " WHERE outbox_id = $1 ORDER BY attempt", row["id"])
            assert [(a["outcome"], a["reason"], a["retry_after_s"]) for a in attempts] == [
                ("retry", "quota_exceeded", 7.0), ("sent", None, None)]

    run(main())


def test_unavailable_and_hang_are_retried_with_backoff(database_url: str) -> None:
    async def main() -> None:
        async with Env(database_url, fcm_timeout_s=0.5) as e:
            e.fcm.script = ["unavailable", "hang"]
            e.fcm.hang_s = 1.5
            case_id = await e.case()
            await s.open_alert(e.outbox, e.pool, case_id)
            await e.advance(10)
            [row] = await s.rows(e.pool, "channel = 'push'")
            assert row["status"] == "sent" and row["attempts"] == 3
            reasons = [r["reason"] for r in await e.pool.fetch(
                "SELECT reason FROM delivery_attempts WHERE outbox_id = $1 ORDER BY attempt", row["id"])]
            assert reasons == ["unavailable", "timeout", None]

    run(main())


def test_unregistered_token_is_disabled_operator_alerted_and_sms_sent(database_url: str) -> None:
    async def main() -> None:
        async with Env(database_url) as e:
            e.fcm.mode = "unregistered"
            case_id = await e.case(phone="+31612345678", language="nl")
            alert_id = await s.open_alert(e.outbox, e.pool, case_id)
            await e.d.drain()
            dev = await e.pool.fetchrow("SELECT push_token, push_token_disabled_reason FROM devices"
                                        " WHERE case_id = $1 AND role = 'victim_app'", case_id)
            assert dev["push_token"] is None and dev["push_token_disabled_reason"] == "unregistered"
            op = await e.pool.fetchrow("SELECT kind, level, detail FROM alerts WHERE case_id = $1 AND kind ="
                                       " 'delivery_failed'", case_id)
            assert op is not None and op["detail"]["recipient"] == "victim" and op["detail"]["channel"] == "push"
            assert "cannot be reached by push" in op["detail"]["message"]
            [sms] = e.sms.received
            assert sms.headers["authorization"] == "Bearer sms-key"
            body = sms.json
            assert body["to"] == "+31612345678" and body["text"].startswith("Veiligheidsmelding")
            push_row = (await s.rows(e.pool, "channel = 'push'"))[0]
            assert body["reference"] == str(push_row["message_key"])
            hist = await s.changes(e.pool, alert_id)
            assert "delivery_failed" in hist and "notified" in hist
            from api.alerts.repository import fetch_alert
            deliveries = (await fetch_alert(e.pool, alert_id))["deliveries"]  # type: ignore[index]
            by_channel = {d["channel"]: d for d in deliveries}
            assert by_channel["push"]["status"] == "failed" and by_channel["push"]["reason"] == "unregistered"
            assert by_channel["sms"]["status"] == "sent"

    run(main())


def test_two_minute_fcm_outage_delivers_everything_afterwards_in_order_per_victim(database_url: str) -> None:
    async def main() -> None:
        async with Env(database_url) as e:
            e.fcm.mode = "unavailable"
            expected: dict[str, list[str]] = {}
            for v in range(3):
                case_id = await e.case(token=f"tok-{v}", policy={"auto_escalate": False, "pursuit": False})
                alert_id = await s.open_alert(e.outbox, e.pool, case_id)
                for m in range(3):
                    await s.change(e.outbox, e.pool, alert_id, "victim_messaged", detail={"text": f"update {m}", "urgent": True})
                    e.clock.advance(1)
                keys = [str(r["message_key"]) for r in await e.pool.fetch(
                    "SELECT message_key FROM outbox WHERE case_id = $1 AND channel = 'push' ORDER BY id", case_id)]
                expected[f"tok-{v}"] = keys
            await e.advance(120, step=5)  # the outage: every attempt fails
            failed_during_outage = len(e.fcm.received)
            assert failed_during_outage >= 3
            assert await e.pool.fetchval("SELECT count(*) FROM outbox WHERE channel = 'push' AND status = 'sent'") == 0
            e.fcm.mode = "ok"
            await e.advance(200, step=5)
            ok = e.fcm.received[failed_during_outage:]
            got: dict[str, list[str]] = {}
            for r in ok:
                m = r.json["message"]
                got.setdefault(m["fid"], []).append(m["data"]["idempotency_key"])
            assert got == expected  # everything, once, in order per victim
            assert await e.pool.fetchval("SELECT count(*) FROM outbox WHERE channel = 'push' AND status <> 'sent'") == 0
            assert await e.pool.fetchval("SELECT count(*) FROM alerts WHERE kind = 'delivery_failed'") == 0

    run(main())


def test_deadline_dead_letters_and_says_who_could_not_be_reached(database_url: str) -> None:
    async def main() -> None:
        async with Env(database_url, deadline_s=20) as e:
            e.fcm.mode = "unavailable"
            case_id = await e.case(policy={"victim_ack_deadline_s": 600, "auto_escalate": False})
            alert_id = await s.open_alert(e.outbox, e.pool, case_id)
            await e.advance(40)
            [row] = await s.rows(e.pool, "channel = 'push'")
            assert row["status"] == "dead" and "deadline passed" in row["last_error"]
            op = await e.pool.fetchrow("SELECT detail FROM alerts WHERE kind = 'delivery_failed' AND case_id = $1",
                                       case_id)
            assert op["detail"]["recipient"] == "victim" and "could not be reached" in op["detail"]["message"]
            assert "delivery_failed" in await s.changes(e.pool, alert_id)
            assert await e.pool.fetchval("SELECT count(*) FROM outbox WHERE channel = 'sms'") == 1

    run(main())


def test_victim_not_confirming_within_30_s_triggers_sms_and_shows_on_the_alert(database_url: str) -> None:
    async def main() -> None:
        async with Env(database_url) as e:
            quiet = await e.case(phone="+31600000001", policy={"auto_escalate": False})
            acked = await e.case(phone="+31600000002", policy={"auto_escalate": False})
            a1 = await s.open_alert(e.outbox, e.pool, quiet)
            a2 = await s.open_alert(e.outbox, e.pool, acked)
            await e.d.drain()
            assert len(e.fcm.received) == 2
            await s.change(e.outbox, e.pool, a2, "victim_acknowledged", actor="victim_app:test-device")
            await e.advance(29)
            assert e.sms.received == []
            await e.advance(2)
            assert [r.json["to"] for r in e.sms.received] == ["+31600000001"]
            assert "victim_not_confirmed" in await s.changes(e.pool, a1)
            assert "victim_not_confirmed" not in await s.changes(e.pool, a2)

    run(main())


def test_unacknowledged_violation_escalates_to_police_with_a_signed_webhook(database_url: str) -> None:
    async def main() -> None:
        from api.auth.principals import sign

        async with Env(database_url) as e:
            waiting = await e.case()
            handled = await e.case()
            a1 = await s.open_alert(e.outbox, e.pool, waiting)
            a2 = await s.open_alert(e.outbox, e.pool, handled)
            await s.change(e.outbox, e.pool, a2, "acknowledged", status="acknowledged")
            await e.advance(59)
            assert e.police.received == []
            await e.advance(2)
            [req] = e.police.received
            assert req.path == "/escalations"
            ts = req.headers["x-afstand-timestamp"]
            assert req.headers["x-afstand-key"] == "afstand-nl"
            assert req.headers["x-afstand-signature"] == sign("police-secret", ts, req.body)
            body = req.json
            assert body["alert_id"] == str(a1) and body["type"] == "escalation"
            assert body["escalated_by"] == "system:auto-escalation"
            assert req.headers["idempotency-key"] == body["idempotency_key"]
            hist = await e.pool.fetch("SELECT change, actor FROM alert_changes WHERE alert_id = $1 ORDER BY seq", a1)
            assert ("escalated_to_police", "system:auto-escalation") in [(h["change"], h["actor"]) for h in hist]
            assert "escalated_to_police" not in await s.changes(e.pool, a2)

    run(main())


def test_pursuit_mode_asks_the_supplier_to_raise_and_then_lower_the_rate(database_url: str) -> None:
    async def main() -> None:
        from api.auth.principals import sign

        async with Env(database_url) as e:
            with FakeServer(kind="http") as supplier:
                case_id = await e.case(supplier_webhook=supplier.base + "/rate",
                                       supplier_key=("sup-key-1", b"supplier-secret"))
                alert_id = await s.open_alert(e.outbox, e.pool, case_id, kind="zone_exclusion")
                await e.d.drain()
                await s.change(e.outbox, e.pool, alert_id, "cleared", level="none")
                await e.d.drain()
                bodies = [r.json for r in supplier.received]
                assert [(b["mode"], b["interval_s"]) for b in bodies] == [("pursuit", 15), ("normal", None)]
                assert bodies[0]["serials"] and bodies[0]["serials"][0].startswith("TAG-")
                r0 = supplier.received[0]
                assert r0.headers["x-afstand-key"] == "sup-key-1"
                assert r0.headers["x-afstand-signature"] == sign("supplier-secret", r0.headers["x-afstand-timestamp"],
                                                                 r0.body)

    run(main())


def test_the_same_decision_is_never_enqueued_twice(database_url: str) -> None:
    async def main() -> None:
        async with Env(database_url) as e:
            case_id = await e.case()
            alert_id = await s.open_alert(e.outbox, e.pool, case_id, level="violation", confidence="probable")
            await s.change(e.outbox, e.pool, alert_id, "escalated", confidence="confirmed")  # qualifies again: same message
            seq = await e.pool.fetchval("SELECT max(seq) FROM alert_changes WHERE alert_id = $1", alert_id)
            async with e.pool.acquire() as conn, conn.transaction():  # a replay of the same change
                alert = await conn.fetchrow("SELECT id, kind, case_id, status, max_level FROM alerts WHERE id = $1",
                                            alert_id)
                again = await e.outbox.enqueue_for_change(conn, alert=alert, seq=seq, change="escalated",
                                                          level="violation", confidence="confirmed")
            assert again == 0
            keys = [r["idempotency_key"] for r in await s.rows(e.pool)]
            assert len(keys) == len(set(keys))
            assert await e.pool.fetchval("SELECT count(*) FROM outbox WHERE channel = 'push'") == 1

    run(main())


def test_an_alert_change_rolled_back_enqueues_nothing(database_url: str) -> None:
    async def main() -> None:
        import uuid

        from api.alerts import repository as alert_store

        async with Env(database_url) as e:
            case_id = await e.case()
            try:
                async with e.pool.acquire() as conn, conn.transaction():
                    await alert_store.open_alert(conn, outbox=e.outbox, alert_id=uuid.uuid4(), case_id=case_id,
                                                 kind="proximity",
                                                 level="violation", confidence="confirmed", opened_at=s.T0, actor="system:t")
                    assert await conn.fetchval("SELECT count(*) FROM outbox") > 0
                    raise RuntimeError("abort")
            except RuntimeError:
                pass
            assert await e.pool.fetchval("SELECT count(*) FROM outbox") == 0

    run(main())


def test_two_dispatchers_never_send_the_same_message(database_url: str) -> None:
    async def main() -> None:
        async with Env(database_url) as e:
            for i in range(40):
                case_id = await e.case(token=f"tok-{i}", policy={"auto_escalate": False, "pursuit": False})
                await s.open_alert(e.outbox, e.pool, case_id)
            other = s.dispatcher(e.pool, e.outbox, e.channels, batch=7)
            e.d.config = dataclasses.replace(e.d.config, batch=5)
            for _ in range(20):
                await asyncio.gather(e.d.run_once(), other.run_once())
            keys = [r.json["message"]["data"]["idempotency_key"] for r in e.fcm.received]
            assert len(keys) == 40 and len(set(keys)) == 40

    run(main())


def test_no_offender_coordinates_or_tokens_in_any_payload(database_url: str) -> None:
    async def main() -> None:
        async with Env(database_url) as e:
            with FakeServer(kind="http") as supplier:
                case_id = await e.case(phone="+31600000003", supplier_webhook=supplier.base + "/rate",
                                       supplier_key=("sk", b"ss"))
                alert_id = await s.open_alert(e.outbox, e.pool, case_id)
                await e.pool.execute(
                    "UPDATE alerts SET evidence = $2, detail = $3, min_distance_m = 123.4 WHERE id = $1", alert_id,
                    [{"lat": 52.0907123, "lon": 5.1214456}], {"offender": {"lat": 52.0907123, "lon": 5.1214456}})
                await s.change(e.outbox, e.pool, alert_id, "escalated_to_police", detail={"reason": "operator"})
                await e.advance(35)
                bodies = [r.body.decode() for f in (e.fcm, e.sms, e.police, supplier) for r in f.received]
                assert len(bodies) >= 4
                for b in bodies:
                    low = b.lower()
                    assert "52.09" not in b and "5.121" not in b and '"lat"' not in low and '"lon"' not in low
                    assert "latitude" not in low and "123.4" not in b
                stored = json.dumps([dict(r["payload"]) for r in await s.rows(e.pool)])
                assert "52.09" not in stored and '"lat"' not in stored

    run(main())


def test_victim_without_any_channel_is_shown_on_the_alert_at_once(database_url: str) -> None:
    async def main() -> None:
        async with Env(database_url) as e:
            del e.d.channels["sms"]
            case_id = await e.case(token=None, policy={"auto_escalate": False, "pursuit": False})
            alert_id = await s.open_alert(e.outbox, e.pool, case_id)
            assert await e.d.run_once() >= 1  # one round decides it: no second round for a fallback that cannot go
            detail = await e.pool.fetchval("SELECT detail FROM alert_changes WHERE alert_id = $1 AND change ="
                                           " 'delivery_failed'", alert_id)
            assert detail["reason"] == "no_push_token; sms_not_configured" and detail["final"]
            assert await e.pool.fetchval("SELECT count(*) FROM outbox WHERE channel = 'sms'") == 0
            assert await e.pool.fetchval("SELECT count(*) FROM alerts WHERE kind = 'delivery_failed'") == 0

    run(main())


def test_a_batch_of_deliveries_writes_one_notified_change_each_in_one_go(database_url: str) -> None:
    async def main() -> None:
        async with Env(database_url) as e:
            alerts = []
            for i in range(6):
                case_id = await e.case(token=f"tok-{i}", policy={"auto_escalate": False, "pursuit": False,
                                                                 "victim_ack_deadline_s": 3600})
                alerts.append(await s.open_alert(e.outbox, e.pool, case_id))
            assert await e.d.run_once() == 6
            notified = await e.pool.fetch(
                "SELECT c.seq, c.alert_id, c.actor, c.detail, a.seq AS alert_seq FROM alert_changes c"
                " JOIN alerts a ON a.id = c.alert_id WHERE c.change = 'notified' ORDER BY c.seq")
            assert sorted(r["alert_id"] for r in notified) == sorted(alerts)
            opened_last = await e.pool.fetchval("SELECT max(seq) FROM alert_changes WHERE change = 'opened'")
            assert [r["seq"] for r in notified] == list(range(opened_last + 1, opened_last + 7))
            assert all(r["alert_seq"] == r["seq"] and r["actor"] == "system:notifications" for r in notified)
            keys = {r["alert_id"]: str(r["message_key"]) for r in await s.rows(e.pool, "channel = 'push'")}
            assert all(r["detail"]["idempotency_key"] == keys[r["alert_id"]] and r["detail"]["channel"] == "push"
                       for r in notified)

    run(main())
