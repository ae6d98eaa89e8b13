"""Audit actors have one form, KIND:NAME. Escalating to the police and messaging the victim used to record the
operator's bare name; every writer now goes through api/audit.record with the caller's actor, and the database
refuses any other form (tests/api/privacy/test_audit.py)."""

from __future__ import annotations

import re

from tests.api.factories import db, now, world
from tests.helpers import staff_headers

FORM = re.compile(r"(admin|operator|case_director|contact_person|auditor|victim_app|enrollment|system|cli):.+")


def test_operator_actions_and_policy_changes_name_the_actor_in_one_form(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(run_engine=False, notify_enabled=False)
    w = world(client)
    alert_id = client.post("/v1/me/panic", headers=w.victim, json={"recorded_at": now().isoformat()}).json()["alert_id"]
    operator = staff_headers(client, "operator", "jan")
    assert client.post(f"/v1/alerts/{alert_id}/message-victim", headers=operator,
                       json={"text": "We are on our way"}).status_code == 200
    assert client.post(f"/v1/alerts/{alert_id}/escalate", headers=operator, json={"reason": "no answer"}).status_code == 200
    director = staff_headers(client, "case_director")  # the case's creator, who may reach it
    assert client.put(f"/v1/cases/{w.case_id}/notification-policy", headers=director,
                      json={"victim_phone": "+31612345678"}).status_code == 200
    rows = {r["action"]: r["actor"] for r in db(client, "SELECT action, actor FROM audit_log")}
    assert rows["alert.victim_messaged"] == "operator:jan"
    assert rows["alert.escalated_to_police"] == "operator:jan"
    assert rows["case.notification_policy"] == "case_director:test-case_director"
    assert rows["enrollment.redeem"] == f"victim_app:{w.app['device_id']}"
    every = db(client, "SELECT actor FROM audit_log UNION SELECT actor FROM alert_changes WHERE actor IS NOT NULL")
    assert all(FORM.fullmatch(r["actor"]) for r in every), [r["actor"] for r in every]
