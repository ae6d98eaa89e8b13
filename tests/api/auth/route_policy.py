"""Who may call which route: the authorization policy of every route of the application, as data.

``tests/api/auth/test_authorization_matrix.py`` enumerates the app's route table and calls every route as every
kind of caller; the expected answer comes from this table. A route missing here fails that test, so a new route
cannot ship without someone deciding who may call it.

Each entry says

* ``kind``: ``public`` (anyone), ``staff`` (bearer staff token), ``victim`` (device token), ``supplier`` (HMAC),
  or ``login`` (takes a secret in the body from a caller who has proved nothing yet);
* for staff routes, the ``roles`` admitted (admin is listed explicitly: the audit log excludes it) and whether
  the route is about one ``case`` (its path names ``case_id`` or ``alert_id``), so need-to-know applies;
* ``ok``: what an admitted caller gets with the minimal request the entry builds: ``"2xx"``, or ``"pass"`` when
  the state makes a 409/422 the right answer (``pass`` = anything but 401, 403, 404, 429 or a 5xx);
* for victim routes, ``own``: the path names a resource of the victim's own case, so another case's victim
  gets 404;
* ``body`` / ``query``: a minimal valid request, built from the test's world ``w`` (see the test's ``World``);
* for staff lists that name cases, ``lists``: puts the world's case on the list (``w`` → anything); the matrix
  then checks need-to-know on the list itself: every caller who does not reach the case gets a list without
  it, and an admin's list holds it (so an unfiltered list fails, and so does a seed that adds nothing). Every
  staff list without a path parameter must either be marked so or be named in ``NAMES_NO_CASE`` with a reason.

Expected answers for everyone else follow from need-to-know (SECURITY.md): no or a wrong kind of credential →
401; staff who do not reach the case → 404 (not revealing that it exists); staff who reach it but whose role may
not do this → 403.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

ADMIN, OPERATOR, DIRECTOR, CONTACT, AUDITOR = "admin", "operator", "case_director", "contact_person", "auditor"
READ = frozenset({ADMIN, OPERATOR, DIRECTOR, CONTACT})
WRITE = frozenset({ADMIN, DIRECTOR})
INFORM = frozenset({ADMIN, DIRECTOR, CONTACT})
ACT = frozenset({ADMIN, OPERATOR})
POSITIONS = frozenset({ADMIN, OPERATOR, DIRECTOR})
ANY_STAFF = frozenset({ADMIN, OPERATOR, DIRECTOR, CONTACT, AUDITOR})

Build = Callable[[Any], Any]


@dataclass(frozen=True)
class Rule:
    kind: str
    roles: frozenset[str] = frozenset()
    case: bool = False
    ok: str = "2xx"
    own: bool = False
    status: int | None = None
    body: Build | None = None
    query: Build | None = None
    lists: Build | None = None


def public() -> Rule:
    return Rule("public")


def staff(roles: frozenset[str], *, case: bool, ok: str = "2xx", body: Build | None = None,
          query: Build | None = None, lists: Build | None = None) -> Rule:
    return Rule("staff", roles=roles, case=case, ok=ok, body=body, query=query, lists=lists)


def _whole(w: Any) -> dict[str, int]:
    """Lists are read in one page in the matrix: the world's case must not hide on a later page."""
    return {"limit": 500}


def victim(*, own: bool = False, body: Build | None = None) -> Rule:
    return Rule("victim", own=own, body=body)


def supplier(body: Build) -> Rule:
    return Rule("supplier", body=body)


def login(status: int, body: Build) -> Rule:
    """Every caller, whatever credential it carries, gets ``status`` for the deliberately wrong secret in
    ``body``: the route does not depend on who calls it."""
    return Rule("login", status=status, body=body)


def _now(delta_s: float = 0) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=delta_s)).isoformat()


def _ref() -> str:
    return f"MATRIX-{uuid.uuid4().hex[:8]}"


_SQUARE = [[5.0, 52.0], [5.01, 52.0], [5.01, 52.01], [5.0, 52.01], [5.0, 52.0]]


def _period(w: Any) -> dict[str, str]:
    return {"reason": "matrix test", "from": _now(-3600), "to": _now(60)}


POLICY: dict[tuple[str, str], Rule] = {
    # ------------------------------------------------------------ public: documents, health, console assets
    ("GET", "/openapi.json"): public(),
    ("GET", "/docs"): public(),
    ("GET", "/docs/oauth2-redirect"): public(),
    ("GET", "/redoc"): public(),
    ("GET", "/metrics"): public(),
    ("GET", "/healthz"): public(),
    ("GET", "/readyz"): public(),
    ("GET", "/v1/evidence/public-key"): public(),  # courts and defence check evidence with it
    ("GET", "/console"): public(),  # static page; it reads everything through the API with the operator's token
    ("GET", "/console/"): public(),
    ("GET", "/console/static/{name:path}"): public(),
    ("GET", "/console/messages/{language}.json"): public(),
    ("GET", "/console/config.json"): public(),

    # ------------------------------------------------------------ cases and what hangs under them
    ("POST", "/v1/cases"): staff(WRITE, case=False, body=lambda w: {
        "reference": _ref(), "proximity": None, "victim": {"display_name": "V"}, "offender": {"display_name": "O"}}),
    ("GET", "/v1/cases"): staff(READ, case=False, query=_whole, lists=lambda w: w.case_id),
    ("GET", "/v1/cases/{case_id}"): staff(READ, case=True),
    ("PATCH", "/v1/cases/{case_id}"): staff(WRITE, case=True, body=lambda w: {"proximity": {"warn_m": 1000, "alert_m": 500}}),
    ("POST", "/v1/cases/{case_id}/orders"): staff(WRITE, case=True, body=lambda w: {
        "kind": "contact_ban", "reference": "OM-2", "valid_from": "2026-01-01T00:00:00Z", "valid_until": None}),
    ("GET", "/v1/cases/{case_id}/orders"): staff(READ, case=True),
    ("POST", "/v1/cases/{case_id}/zones"): staff(WRITE, case=True, body=lambda w: {
        "order_id": w.order_id, "name": "Street", "kind": "exclusion",
        "geometry": {"type": "Polygon", "coordinates": [_SQUARE]}, "buffer_m": 100, "schedule": None}),
    ("GET", "/v1/cases/{case_id}/zones"): staff(READ, case=True),
    ("DELETE", "/v1/cases/{case_id}/zones/{zone_id}"): staff(WRITE, case=True),
    ("POST", "/v1/cases/{case_id}/devices"): staff(WRITE, case=True, body=lambda w: {
        "role": "offender_tag", "supplier_key_id": w.supplier.key_id, "serial": "T-" + uuid.uuid4().hex[:8]}),
    ("GET", "/v1/cases/{case_id}/devices"): staff(READ, case=True),
    ("POST", "/v1/cases/{case_id}/devices/{device_id}/revoke"): staff(WRITE, case=True),
    ("POST", "/v1/cases/{case_id}/enrollments"): staff(WRITE, case=True),
    ("GET", "/v1/cases/{case_id}/notification-policy"): staff(READ, case=True),
    ("PUT", "/v1/cases/{case_id}/notification-policy"): staff(WRITE, case=True, body=lambda w: {"policy": {}}),
    ("GET", "/v1/cases/{case_id}/track"): staff(POSITIONS, case=True, query=_period),
    ("GET", "/v1/cases/{case_id}/encounters"): staff(POSITIONS, case=True, query=_period),
    ("GET", "/v1/cases/{case_id}/export"): staff(POSITIONS, case=True, query=lambda w: {"reason": "matrix test"}),
    ("POST", "/v1/cases/{case_id}/feasibility"): staff(READ, case=True, body=lambda w: {}),
    ("PUT", "/v1/cases/{case_id}/addresses"): staff(WRITE, case=True, body=lambda w: {}),
    ("GET", "/v1/cases/{case_id}/addresses"): staff(WRITE, case=True),
    ("POST", "/v1/cases/{case_id}/risk-screenings"): staff(INFORM, case=True, body=lambda w: {
        "level": "low", "screened_on": "2026-01-01"}),
    ("GET", "/v1/cases/{case_id}/risk-screenings"): staff(READ, case=True),
    ("POST", "/v1/cases/{case_id}/orders/{order_id}/extensions"): staff(INFORM, case=True, body=lambda w: {
        "valid_until": w.next_until(), "reference": "OM-EXT"}),
    ("GET", "/v1/cases/{case_id}/orders/{order_id}/extensions"): staff(READ, case=True),
    ("POST", "/v1/cases/{case_id}/orders/{order_id}/let-go"): staff(INFORM, case=True, body=lambda w: {
        "reason": "protection no longer needed"}),
    ("POST", "/v1/cases/{case_id}/timeline"): staff(INFORM, case=True, body=lambda w: {
        "kind": "note", "visibility": "internal", "occurred_at": _now()}),
    ("GET", "/v1/cases/{case_id}/timeline"): staff(READ, case=True),
    ("GET", "/v1/orders/ending"): staff(INFORM, case=False, query=_whole, lists=lambda w: w.ending_order()),
    ("GET", "/v1/devices/attention"): staff(READ, case=False, query=_whole, lists=lambda w: w.device_id),
    ("GET", "/v1/cases/{case_id}/messages"): staff(READ, case=True),
    ("GET", "/v1/cases/{case_id}/victim-notices"): staff(READ, case=True),
    ("POST", "/v1/cases/{case_id}/messages"): staff(INFORM, case=True, body=lambda w: {"body": "Update on your case."}),
    ("POST", "/v1/cases/{case_id}/messages/{message_id}/read"): staff(INFORM, case=True),
    ("PUT", "/v1/cases/{case_id}/assignments"): staff(WRITE, case=True, body=lambda w: {
        "agency": "police", "function": "contact_person", "staff_id": w.spare_member()}),
    ("GET", "/v1/cases/{case_id}/assignments"): staff(READ, case=True),
    ("POST", "/v1/cases/{case_id}/contact-agreements"): staff(INFORM, case=True, body=lambda w: {
        "agency": "police", "every_days": 14, "channel": "phone"}),
    ("GET", "/v1/cases/{case_id}/contact-agreements"): staff(READ, case=True),
    ("POST", "/v1/cases/{case_id}/contact-agreements/{agreement_id}/contacts"): staff(INFORM, case=True, body=lambda w: {
        "contacted_at": _now(-60)}),
    ("POST", "/v1/cases/{case_id}/contact-agreements/{agreement_id}/end"): staff(INFORM, case=True),
    # need-to-know itself (api/auth/endpoints.py)
    ("GET", "/v1/cases/{case_id}/access"): staff(WRITE, case=True),
    ("PUT", "/v1/cases/{case_id}/access"): staff(WRITE, case=True, body=lambda w: {
        "staff_sub": "colleague-" + uuid.uuid4().hex[:6], "relation": "contact_person"}),
    ("DELETE", "/v1/cases/{case_id}/access/{staff_sub}"): staff(WRITE, case=True),
    ("PUT", "/v1/cases/{case_id}/watchers"): staff(WRITE, case=True, body=lambda w: {
        "staff_sub": "night-op-" + uuid.uuid4().hex[:6]}),
    ("DELETE", "/v1/cases/{case_id}/watchers/{staff_sub}"): staff(WRITE, case=True),

    # ------------------------------------------------------------ alerts (the world's alert is resolved)
    ("GET", "/v1/alerts"): staff(READ, case=False, query=_whole, lists=lambda w: w.alert_id),
    ("GET", "/v1/alerts/load"): staff(ACT, case=False, query=lambda w: {"hours": 24}),
    ("GET", "/v1/alerts/{alert_id}"): staff(READ, case=True),
    ("POST", "/v1/alerts/{alert_id}/acknowledge"): staff(ACT, case=True, ok="pass"),  # 409: already resolved
    ("POST", "/v1/alerts/{alert_id}/resolve"): staff(ACT, case=True, ok="pass", body=lambda w: {"outcome": "other"}),
    ("POST", "/v1/alerts/{alert_id}/notes"): staff(ACT, case=True, body=lambda w: {"note": "called the victim"}),
    ("POST", "/v1/alerts/{alert_id}/escalate"): staff(ACT, case=True, ok="pass", body=lambda w: {"reason": "test"}),
    ("POST", "/v1/alerts/{alert_id}/message-victim"): staff(ACT, case=True, body=lambda w: {"text": "Are you safe?"}),
    ("GET", "/v1/alerts/{alert_id}/evidence"): staff(POSITIONS, case=True, query=lambda w: {"reason": "matrix test"}),
    ("WS", "/v1/alerts/stream"): staff(READ, case=False),

    # ------------------------------------------------------------ staff members, contact persons, feasibility
    ("POST", "/v1/staff"): staff(frozenset({ADMIN}), case=False, body=lambda w: {
        "sub": "new-" + uuid.uuid4().hex[:8], "display_name": "New", "agency": "police", "role_title": "agent"}),
    ("GET", "/v1/staff"): staff(READ, case=False),
    ("PATCH", "/v1/staff/{staff_id}"): staff(frozenset({ADMIN}), case=False, body=lambda w: {"phone": "0301234567"}),
    ("POST", "/v1/staff/{staff_id}/deactivate"): staff(frozenset({ADMIN}), case=False, body=lambda w: {"reason": "left"}),
    ("GET", "/v1/contact/orphaned"): staff(WRITE, case=False, query=_whole, lists=lambda w: w.orphaned_assignment()),
    ("GET", "/v1/contact/overdue"): staff(INFORM, case=False, query=_whole, lists=lambda w: w.overdue_agreement()),
    # one's own notices, and for case directors the agency queue of cases without a case director
    ("GET", "/v1/contact/notices"): staff(ANY_STAFF, case=False, query=_whole, lists=lambda w: w.queued_notice()),
    ("POST", "/v1/feasibility"): staff(READ, case=False, body=lambda w: {}),  # a draft: reads and stores nothing
    ("GET", "/v1/audit"): staff(frozenset({AUDITOR}), case=False),  # not even admin: the auditor watches admins
    ("POST", "/v1/supplier-keys/{key_id}/rotate"): staff(frozenset({ADMIN}), case=False),
    ("POST", "/v1/supplier-keys/{key_id}/revoke"): staff(frozenset({ADMIN}), case=False),

    # ------------------------------------------------------------ suppliers
    ("POST", "/v1/ingest/positions"): supplier(body=lambda w: {"positions": []}),
    ("POST", "/v1/ingest/events"): supplier(body=lambda w: {"events": []}),

    # ------------------------------------------------------------ the victim app
    ("POST", "/v1/me/enroll"): login(400, body=lambda w: {
        "code": "ABCDEFGH" + "2" * 16, "installation_id": "x", "platform": "android"}),
    ("POST", "/v1/me/token"): login(401, body=lambda w: {"refresh_token": "not-a-refresh-token"}),
    ("POST", "/v1/me/positions"): victim(body=lambda w: {"positions": []}),
    ("GET", "/v1/me/beacons"): victim(),
    ("POST", "/v1/me/encounters"): victim(body=lambda w: {"encounters": []}),
    ("POST", "/v1/me/panic"): victim(body=lambda w: {"recorded_at": _now(-1)}),
    ("PUT", "/v1/me/push-token"): victim(body=lambda w: {"push_token": "push-" + uuid.uuid4().hex[:6]}),
    ("GET", "/v1/me/alerts"): victim(),
    ("POST", "/v1/me/alerts/{alert_id}/ack"): victim(own=True),
    ("GET", "/v1/me/case"): victim(),
    ("GET", "/v1/me/timeline"): victim(),
    ("GET", "/v1/me/orders"): victim(),
    ("GET", "/v1/me/notices"): victim(),
    ("GET", "/v1/me/preferences"): victim(),
    ("PUT", "/v1/me/preferences"): victim(body=lambda w: {
        "language": "nl", "channel": "app", "quiet_hours": None, "update_frequency": "weekly"}),
    ("GET", "/v1/me/messages"): victim(),
    ("POST", "/v1/me/messages"): victim(body=lambda w: {"body": "Thank you."}),
    ("POST", "/v1/me/messages/{message_id}/read"): victim(own=True),
}


# Staff lists that name no case, or whose readers see every case by their role, with the reason.
NAMES_NO_CASE: dict[tuple[str, str], str] = {
    ("GET", "/v1/staff"): "staff members, not cases",
    ("GET", "/v1/audit"): "the auditor reads the whole audit log by role; no other role reaches it",
    ("GET", "/v1/alerts/load"): "the monitoring room's load: counts for the whole room, naming no case",
}
