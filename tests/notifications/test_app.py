"""Through the real app: the outbox dispatcher runs in the lifespan, routes enqueue in their transaction, and
the real FCM channel reaches a fake FCM on 127.0.0.1."""

from __future__ import annotations

import time
import uuid
from typing import Any, Callable

import pytest

from api.alerts import repository as alert_store
from api.auth.principals import sign
from tests.helpers import staff_headers
from tests.notifications.fakes import FakeServer


@pytest.fixture
def fakes():  # type: ignore[no-untyped-def]
    servers = {"fcm": FakeServer(), "police": FakeServer(kind="http"), "sms": FakeServer(kind="http")}
    yield servers
    for f in servers.values():
        f.close()


@pytest.fixture
def app(make_client, fakes):  # type: ignore[no-untyped-def]
    return make_client(
        run_engine=False, fcm_project_id="afstand-test", fcm_url=fakes["fcm"].fcm_url,
        police_webhook_url=fakes["police"].base + "/escalate", police_webhook_key_id="afstand-police",
        police_webhook_secret="police-secret", sms_url=fakes["sms"].base + "/sms", notify_poll_s=0.2,
    )


def wait_for(cond: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def setup_case(client, token: str | None = "tok-app-1", language: str = "nl") -> str:  # type: ignore[no-untyped-def]
    r = client.post("/v1/cases", headers=staff_headers(client, "case_director"), json={
        "reference": f"NT-{uuid.uuid4().hex[:6]}", "proximity": None,
        "victim": {"display_name": "V", "language": language}, "offender": {"display_name": "O"}})
    assert r.status_code == 201, r.text
    case_id = r.json()["id"]
    pool = client.app.state.ctx.pool
    client.portal.call(pool.execute, "INSERT INTO devices (id, case_id, role, platform, push_token, installation_id)"
                       " VALUES ($1, $2, 'victim_app', 'android', $3, 'i')", uuid.uuid4(), uuid.UUID(case_id), token)
    return case_id


def open_alert(client, case_id: str, kind: str = "proximity") -> str:  # type: ignore[no-untyped-def]
    alert_id = uuid.uuid4()
    pool = client.app.state.ctx.pool

    async def write() -> None:
        from datetime import datetime, timezone

        async with pool.acquire() as conn, conn.transaction():
            await alert_store.open_alert(conn, outbox=client.app.state.ctx.outbox, alert_id=alert_id,
                                         case_id=uuid.UUID(case_id), kind=kind,
                                         level="violation", confidence="confirmed",
                                         opened_at=datetime.now(timezone.utc))

    client.portal.call(write)
    return str(alert_id)


def test_alert_change_reaches_fake_fcm_within_a_second(app, fakes) -> None:  # type: ignore[no-untyped-def]
    case_id = setup_case(app)
    started = time.monotonic()
    alert_id = open_alert(app, case_id)
    wait_for(lambda: fakes["fcm"].received, 5)
    assert time.monotonic() - started < 1.0  # LISTEN/NOTIFY wakes the dispatcher, no polling delay
    msg = fakes["fcm"].messages()[0]
    assert msg["fid"] == "tok-app-1" and msg["data"]["alert_id"] == alert_id
    assert msg["notification"]["title"] == "Veiligheidsmelding"
    operator = staff_headers(app, "operator")
    # The change and the delivery status commit together; GET reads them in two statements, so wait for both.
    alert = wait_for(lambda: (a := app.get(f"/v1/alerts/{alert_id}", headers=operator).json())
                     and any(d["status"] == "sent" for d in a["deliveries"])
                     and "notified" in [c["change"] for c in a["changes"]] and a)
    assert [(d["recipient"], d["channel"], d["status"]) for d in alert["deliveries"]][:1] == [("victim", "push", "sent")]
    assert "notified" in [c["change"] for c in alert["changes"]]


def test_operator_escalation_reaches_police_signed_once(app, fakes) -> None:  # type: ignore[no-untyped-def]
    alert_id = open_alert(app, setup_case(app))
    operator = staff_headers(app, "operator")
    assert app.post(f"/v1/alerts/{alert_id}/escalate", headers=staff_headers(app, "case_director")).status_code == 403
    r = app.post(f"/v1/alerts/{alert_id}/escalate", headers=operator, json={"reason": "offender not answering"})
    assert r.status_code == 200, r.text
    assert r.json()["changes"][-1]["change"] == "escalated_to_police"
    assert r.json()["changes"][-1]["actor"] == "operator:test-operator"
    again = app.post(f"/v1/alerts/{alert_id}/escalate", headers=operator)
    assert again.status_code == 409
    [req] = wait_for(lambda: fakes["police"].received)
    assert req.headers["x-afstand-key"] == "afstand-police"
    assert req.headers["x-afstand-signature"] == sign("police-secret", req.headers["x-afstand-timestamp"], req.body)
    assert req.json["alert_id"] == alert_id and req.json["reason"] == "offender not answering"
    alert = wait_for(lambda: (a := app.get(f"/v1/alerts/{alert_id}", headers=operator).json())
                     and any(d["channel"] == "police_webhook" and d["status"] == "sent" for d in a["deliveries"]) and a)
    assert alert["status"] == "open"
    assert app.post(f"/v1/alerts/{uuid.uuid4()}/escalate", headers=operator).status_code == 404


def test_operator_message_reaches_the_victim_in_her_language(app, fakes) -> None:  # type: ignore[no-untyped-def]
    alert_id = open_alert(app, setup_case(app, token="tok-en", language="en"))
    operator = staff_headers(app, "operator")
    wait_for(lambda: fakes["fcm"].received)
    r = app.post(f"/v1/alerts/{alert_id}/message-victim", headers=operator, json={"template": "police_on_way"})
    assert r.status_code == 200, r.text
    r = app.post(f"/v1/alerts/{alert_id}/message-victim", headers=operator, json={"text": "We call you now"})
    assert r.status_code == 200
    msgs = wait_for(lambda: len(fakes["fcm"].received) >= 3 and fakes["fcm"].messages())
    assert msgs[1]["notification"]["title"] == "Police on the way"
    assert msgs[2]["notification"] == {"title": "Message from the monitoring room", "body": "We call you now"}
    assert msgs[1]["data"]["purpose"] == "operator_message"
    bad = app.post(f"/v1/alerts/{alert_id}/message-victim", headers=operator, json={"template": "nope"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["template"]
    both = app.post(f"/v1/alerts/{alert_id}/message-victim", headers=operator, json={"text": "a", "template": "call_us"})
    assert both.status_code == 422


def test_notification_policy_per_case(app, fakes) -> None:  # type: ignore[no-untyped-def]
    case_id = setup_case(app, token=None)
    director = staff_headers(app, "case_director")
    r = app.put(f"/v1/cases/{case_id}/notification-policy", headers=director, json={
        "victim_phone": "+31612345678", "policy": {"quiet_hours": {"start": "22:00", "end": "07:00"},
                                                  "victim_min_confidence": "confirmed"}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["victim_phone_set"] and body["effective"]["victim_min_confidence"] == "confirmed"
    assert "+316" not in r.text
    bad = app.put(f"/v1/cases/{case_id}/notification-policy", headers=director, json={"policy": {"nope": 1}})
    assert bad.status_code == 422
    bad = app.put(f"/v1/cases/{case_id}/notification-policy", headers=director, json={"victim_phone": "0612"})
    assert bad.status_code == 422
    # The operator reaches the case (need-to-know: from their watch list) but may not change its policy.
    assert app.put(f"/v1/cases/{case_id}/watchers", headers=director, json={"staff_sub": "test-operator"}).status_code == 200
    assert app.put(f"/v1/cases/{case_id}/notification-policy", headers=staff_headers(app, "operator"),
                   json={}).status_code == 403
    # No push token: the safety message goes by SMS at once.
    open_alert(app, case_id)
    [sms] = wait_for(lambda: fakes["sms"].received)
    assert sms.json["to"] == "+31612345678"


def test_panic_acknowledged_by_operator_is_confirmed_to_the_victim(app, fakes) -> None:  # type: ignore[no-untyped-def]
    director = staff_headers(app, "case_director")
    case_id = setup_case(app, token=None, language="en")
    r = app.post(f"/v1/cases/{case_id}/enrollments", headers=director)
    assert r.status_code == 201, r.text
    enrolled = app.post("/v1/me/enroll", json={"code": r.json()["code"], "installation_id": "x", "platform": "ios",
                                               "push_token": "tok-panic"})
    assert enrolled.status_code == 201, enrolled.text
    victim = {"Authorization": "Bearer " + enrolled.json()["access_token"]}
    from datetime import datetime, timezone

    panic = app.post("/v1/me/panic", headers=victim, json={"recorded_at": datetime.now(timezone.utc).isoformat()})
    assert panic.status_code == 201, panic.text
    alert_id = panic.json()["alert_id"]
    operator = staff_headers(app, "operator")
    assert app.post(f"/v1/alerts/{alert_id}/acknowledge", headers=operator).status_code == 200
    msgs = wait_for(lambda: [m for m in fakes["fcm"].messages() if m["data"]["purpose"] == "panic_ack"])
    assert msgs[0]["fid"] == "tok-panic" and msgs[0]["notification"]["title"] == "We received your alert"
    assert msgs[0]["data"]["alert_id"] == alert_id
