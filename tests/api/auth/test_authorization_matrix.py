"""The authorization matrix, generated from the application's own route table (issue 6).

Every route (HTTP and WebSocket) × every kind of caller: anonymous; admin; each other staff role once with a
reason to reach the case (assigned, granted, or on the operator's watch list) and once without; the victim of
this case; the victim of another case; a supplier key. The expected answer of each cell comes from
``tests/api/auth/route_policy.py``; a route that has no entry there fails ``test_every_route_has_a_policy``.

Each route is tried on a fresh "world" (a case with an order, a zone, a tag, an enrolled victim app, a resolved
alert, messages and a contact agreement), so what one route changes cannot decide another route's answer.
Resources a route consumes (a zone to delete, a grant to end, a staff member to deactivate, a supplier key to
revoke) are made fresh for each call.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cached_property
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocketDisconnect

from api.app import create_app
from api.auth.principals import mint_staff_token, sign
from api.cli import create_supplier
from api.platform.settings import Settings
from tests.api.auth.route_policy import ADMIN, AUDITOR, CONTACT, DIRECTOR, NAMES_NO_CASE, OPERATOR, POLICY, Rule


def route_table(app: Any) -> list[tuple[str, str]]:
    """(method, path template) of every route the app serves; ``WS`` for WebSocket routes. HEAD is implied
    by GET and left out."""
    out = set()
    for ctx in iter_route_contexts(app.routes):
        original = ctx.original_route
        if isinstance(original, WebSocketRoute) or type(original).__name__ == "APIWebSocketRoute":
            out.add(("WS", ctx.path))
            continue
        for method in ctx.methods or ():
            if method != "HEAD":
                out.add((method, ctx.path))
    return sorted(out, key=lambda mp: (mp[1], mp[0]))


def test_every_route_has_a_policy(tmp_path) -> None:  # type: ignore[no-untyped-def]
    routes = route_table(create_app(Settings(data_dir=tmp_path)))
    missing = [r for r in routes if r not in POLICY]
    assert not missing, "routes without an authorization policy; add an entry for each to " \
        "tests/api/auth/route_policy.py POLICY:\n" + "\n".join(f"    {r!r}" for r in missing)
    stale = [r for r in POLICY if r not in routes]
    assert not stale, "POLICY names routes the app does not serve (renamed or removed?):\n" + \
        "\n".join(f"    {r!r}" for r in stale)
    # The table is the whole app: HTTP routes and the alert stream.
    assert ("WS", "/v1/alerts/stream") in routes and len(routes) > 80
    # Every staff list decides need-to-know: marked as naming cases (checked cell by cell) or named as not.
    lists = [(m, p) for m, p in routes if m == "GET" and "{" not in p and POLICY.get((m, p)) is not None
             and POLICY[(m, p)].kind == "staff"]
    undecided = [r for r in lists if POLICY[r].lists is None and r not in NAMES_NO_CASE]
    assert not undecided, "staff lists neither marked ``lists=`` in POLICY nor named in NAMES_NO_CASE:\n" + \
        "\n".join(f"    {r!r}" for r in undecided)


# ---------------------------------------------------------------- callers


@dataclass(frozen=True)
class Caller:
    name: str
    kind: str  # anonymous | staff | victim | victim_other | supplier
    role: str | None = None
    reaches: bool = False  # has a reason to reach the world's case (assigned, granted, watching)

    @property
    def sub(self) -> str:
        return f"mx-{self.role}-{'a' if self.reaches else 'u'}"


CALLERS = [
    Caller("anonymous", "anonymous"),
    Caller("admin", "staff", ADMIN, True),
    Caller("operator watching the case", "staff", OPERATOR, True),
    Caller("operator, no alert, not watching", "staff", OPERATOR, False),
    Caller("case director of the case", "staff", DIRECTOR, True),
    Caller("case director of other cases", "staff", DIRECTOR, False),
    Caller("contact person granted the case", "staff", CONTACT, True),
    Caller("contact person not granted", "staff", CONTACT, False),
    Caller("auditor granted the case", "staff", AUDITOR, True),
    Caller("auditor", "staff", AUDITOR, False),
    Caller("victim of this case", "victim"),
    Caller("victim of another case", "victim_other"),
    Caller("supplier key", "supplier"),
]
STAFF = [c for c in CALLERS if c.kind == "staff"]


def expected(rule: Rule, caller: Caller) -> str | int:
    if rule.kind == "public":
        return "2xx"
    if rule.kind == "login":
        assert rule.status is not None
        return rule.status
    if rule.kind == "victim":
        if caller.kind == "victim":
            return rule.ok
        if caller.kind == "victim_other":
            return 404 if rule.own else rule.ok
        return 401
    if rule.kind == "supplier":
        return rule.ok if caller.kind == "supplier" else 401
    assert rule.kind == "staff"
    if caller.kind != "staff":
        return 401
    if rule.case and not (caller.role == ADMIN or (caller.reaches and caller.role != AUDITOR)):
        return 404  # need-to-know: as if the case did not exist
    if caller.role not in rule.roles:
        return 403
    return rule.ok


def matches(want: str | int, status: int) -> bool:
    if want == "2xx":
        return 200 <= status < 300
    if want == "pass":  # past authentication and need-to-know; the state decides (409, 422)
        return status not in (401, 403, 404, 429) and status < 500
    return status == want


# ---------------------------------------------------------------- the world each route is tried in


def _iso(delta_s: float = 0) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=delta_s)).isoformat()


class Matrix:
    """The app, its registered staff, a supplier, and another case with its own enrolled victim."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.key = client.app.state.ctx.key
        for c in STAFF:
            self.call("POST", "/v1/staff", self.staff(ADMIN), {
                "sub": c.sub, "display_name": c.name, "agency": "police", "role_title": "agent", "sash_trained": True},
                want=201)
        self.other = World(self)

    def staff(self, role: str, reaches: bool = True) -> dict[str, str]:
        sub = Caller("", "staff", role, reaches).sub
        return {"Authorization": "Bearer " + mint_staff_token(self.key, role, sub)}

    def call(self, method: str, path: str, headers: dict[str, str], body: Any = None, want: int = 200) -> Any:
        r = self.client.request(method, path, headers=headers, json=body)
        assert r.status_code == want, f"setup {method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content else None

    def supplier(self) -> dict[str, str]:
        return asyncio.run(create_supplier(self.client.app.state.ctx.settings, "mx-" + uuid.uuid4().hex[:8]))


class World:
    def __init__(self, m: Matrix) -> None:
        self.m = m
        director = m.staff(DIRECTOR)
        self.director = director
        self.reference = "MX-" + uuid.uuid4().hex[:8]
        self.case_id = m.call("POST", "/v1/cases", director, {
            "reference": self.reference, "proximity": {"warn_m": 1000, "alert_m": 500},
            "victim": {"display_name": "Anna", "language": "nl"}, "offender": {"display_name": "Bram"}}, want=201)["id"]
        base = f"/v1/cases/{self.case_id}"
        for role in (CONTACT, AUDITOR):
            m.call("PUT", base + "/access", director, {"staff_sub": f"mx-{role}-a", "relation": "contact_person"})
        m.call("PUT", base + "/watchers", director, {"staff_sub": f"mx-{OPERATOR}-a"})
        code = m.call("POST", base + "/enrollments", director, want=201)["code"]
        pair = m.call("POST", "/v1/me/enroll", {}, {"code": code, "installation_id": uuid.uuid4().hex,
                                                  "platform": "android", "push_token": "push-x"}, want=201)
        self.victim = {"Authorization": "Bearer " + pair["access_token"]}
        self.supplier = SimpleNamespace(**m.supplier())  # key_id, secret: this world's supplier
        self._until = datetime.now(timezone.utc) + timedelta(days=60)

    # ------------------------------------------------------------ resources, made on first use

    @cached_property
    def order_id(self) -> str:
        return self.m.call("POST", f"/v1/cases/{self.case_id}/orders", self.director, {
            "kind": "contact_ban", "reference": "OM-1", "valid_from": _iso(-86400),
            "valid_until": self._until.isoformat()}, want=201)["id"]

    @cached_property
    def device_id(self) -> str:
        return self.m.call("POST", f"/v1/cases/{self.case_id}/devices", self.director, {
            "role": "offender_tag", "supplier_key_id": self.supplier.key_id,
            "serial": "TAG-" + uuid.uuid4().hex[:8]}, want=201)["id"]

    @cached_property
    def alert_id(self) -> str:
        """A panic alert, resolved: operators without it on their watch list no longer reach the case."""
        alert_id = self.m.call("POST", "/v1/me/panic", self.victim, {"recorded_at": _iso(-5)}, want=201)["alert_id"]
        self.m.call("POST", f"/v1/alerts/{alert_id}/resolve", self.m.staff(ADMIN), {"outcome": "other"})
        return alert_id

    @cached_property
    def staff_message_id(self) -> str:
        return self.m.call("POST", f"/v1/cases/{self.case_id}/messages", self.director, {"body": "Hello"}, want=201)["id"]

    @cached_property
    def victim_message_id(self) -> str:
        return self.m.call("POST", "/v1/me/messages", self.victim, {"body": "Hi"}, want=201)["id"]

    @cached_property
    def agreement_id(self) -> str:
        return self.m.call("POST", f"/v1/cases/{self.case_id}/contact-agreements", self.director, {
            "agency": "police", "every_days": 14, "channel": "phone"}, want=201)["id"]

    def overdue_agreement(self) -> str:
        """A follow-up of this case whose agreed date has passed."""
        return self.m.call("POST", f"/v1/cases/{self.case_id}/contact-agreements", self.director, {
            "agency": "police", "every_days": 14, "channel": "phone", "first_due_at": _iso(-86400)}, want=201)["id"]

    def orphaned_assignment(self) -> str:
        """A contact person of this case who left (probation: no matrix caller works there)."""
        member = self.m.call("POST", "/v1/staff", self.m.staff(ADMIN), {
            "sub": "leaver-" + uuid.uuid4().hex[:8], "display_name": "Leaver", "agency": "probation",
            "role_title": "agent"}, want=201)["id"]
        self.m.call("PUT", f"/v1/cases/{self.case_id}/assignments", self.director, {
            "agency": "probation", "function": "contact_person", "staff_id": member})
        self.m.call("POST", f"/v1/staff/{member}/deactivate", self.m.staff(ADMIN), {"reason": "left"})
        return member

    def queued_notice(self) -> None:
        """A reminder for an order of this case (which has no case director) in probation's queue."""
        self.m.call("POST", f"/v1/cases/{self.case_id}/orders", self.director, {
            "kind": "contact_ban", "reference": "OM-Q", "valid_from": _iso(-86400),
            "valid_until": _iso(5 * 86400)}, want=201)
        client = self.m.client
        client.portal.call(client.app.state.ctx.order_scheduler.run_once)

    def ending_order(self) -> str:
        """An order of this case that ends in five days."""
        return self.m.call("POST", f"/v1/cases/{self.case_id}/orders", self.director, {
            "kind": "contact_ban", "reference": "OM-END", "valid_from": _iso(-86400),
            "valid_until": _iso(5 * 86400)}, want=201)["id"]

    def next_until(self) -> str:
        self._until += timedelta(days=7)
        return self._until.isoformat()

    def spare_member(self) -> str:
        return self.m.call("POST", "/v1/staff", self.m.staff(ADMIN), {
            "sub": "spare-" + uuid.uuid4().hex[:8], "display_name": "Spare", "agency": "police",
            "role_title": "agent"}, want=201)["id"]

    # ------------------------------------------------------------ path parameters

    def param(self, name: str, method: str, path: str) -> str:
        if name == "case_id":
            return self.case_id
        if name == "alert_id":
            return self.alert_id
        if name == "order_id":
            return self.order_id
        if name == "device_id":
            return self.device_id
        if name == "agreement_id":
            return self.agreement_id
        if name == "message_id":  # the victim reads staff messages; staff read the victim's
            return self.staff_message_id if path.startswith("/v1/me/") else self.victim_message_id
        if name == "zone_id":  # consumed by DELETE: a new zone per call
            return self.m.call("POST", f"/v1/cases/{self.case_id}/zones", self.director, {
                "order_id": self.order_id, "name": "Z", "kind": "exclusion", "buffer_m": 50, "schedule": None,
                "geometry": {"type": "Circle", "center": [5.1, 52.1], "radius_m": 300}}, want=201)["id"]
        if name == "staff_id":  # consumed by deactivate
            return self.spare_member()
        if name == "staff_sub":  # consumed by DELETE of a grant or a watcher
            sub = "temp-" + uuid.uuid4().hex[:8]
            kind = "watchers" if "/watchers/" in path else "access"
            body = {"staff_sub": sub} if kind == "watchers" else {"staff_sub": sub, "relation": "contact_person"}
            self.m.call("PUT", f"/v1/cases/{self.case_id}/{kind}", self.director, body)
            return sub
        if name == "key_id":  # consumed by rotate / revoke
            return self.m.supplier()["key_id"]
        if name in ("name", "name:path"):
            return "console.js"
        if name == "language":
            return "en"
        raise AssertionError(f"no value for path parameter {name!r} of {method} {path}: teach World.param")


# ---------------------------------------------------------------- calling a route as a caller


def headers_for(m: Matrix, w: World, caller: Caller, raw: bytes) -> dict[str, str]:
    if caller.kind == "staff":
        assert caller.role is not None
        return m.staff(caller.role, caller.reaches)
    if caller.kind == "victim":
        return dict(w.victim)
    if caller.kind == "victim_other":
        return dict(m.other.victim)
    if caller.kind == "supplier":
        ts = str(int(time.time()))
        return {"X-Afstand-Key": w.supplier.key_id, "X-Afstand-Timestamp": ts,
                "X-Afstand-Signature": sign(w.supplier.secret, ts, raw)}
    return {}


def ws_status(client: TestClient, headers: dict[str, str]) -> int:
    try:
        with client.websocket_connect("/v1/alerts/stream?after=999999999", headers=headers):
            return 200  # accepted
    except WebSocketDisconnect as closed:
        return {4401: 401, 4403: 403}.get(closed.code, 1000 + closed.code)


def list_leak(rule: Rule, caller: Caller, w: World, status: int, text: str) -> str | None:
    """Need-to-know on a list naming cases: who does not reach the world's case must not find it there; an
    admin must (else the seed put nothing on the list and the check proves nothing)."""
    if rule.lists is None or caller.kind != "staff" or not 200 <= status < 300:
        return None
    present = w.case_id in text or w.reference in text
    if caller.role == ADMIN:
        return None if present else "the world's case is missing from the admin's list"
    reaches = caller.reaches and caller.role != AUDITOR
    return "lists a case the caller does not reach" if present and not reaches else None


def try_route(m: Matrix, method: str, path: str, rule: Rule, caller: Caller, w: World) -> tuple[int, str]:
    url = path
    for name in [p.split("}")[0] for p in path.split("{")[1:]]:
        url = url.replace("{" + name + "}", w.param(name, method, path))
    body = rule.body(w) if rule.body else None
    raw = json.dumps(body).encode() if body is not None else b""
    headers = headers_for(m, w, caller, raw)
    if method == "WS":
        return ws_status(m.client, headers), ""
    if raw:
        headers["Content-Type"] = "application/json"
    r = m.client.request(method, url, headers=headers, content=raw or None,
                         params=rule.query(w) if rule.query else None)
    return r.status_code, r.text


@pytest.fixture
def matrix(make_client) -> Matrix:  # type: ignore[no-untyped-def]
    # No operator grace: once the world's alert is resolved, only the watch list lets an operator in.
    # No rate limits: thirteen callers hit the login-like routes within the second.
    client = make_client(run_engine=False, operator_grace_s=0, rate_limit_enabled=False, notify_enabled=False,
                         order_check_s=0, retention_check_s=0)
    return Matrix(client)


def test_authorization_matrix(matrix: Matrix) -> None:
    routes = route_table(matrix.client.app)
    failures: list[str] = []
    cells = 0
    for method, path in routes:
        rule = POLICY.get((method, path))
        if rule is None:
            continue  # reported by test_every_route_has_a_policy
        world = World(matrix)
        if rule.lists is not None:
            rule.lists(world)
        for caller in CALLERS:
            want = expected(rule, caller)
            status, text = try_route(matrix, method, path, rule, caller, world)
            cells += 1
            if not matches(want, status):
                failures.append(f"{method} {path} as {caller.name}: expected {want}, got {status} {text[:160]}")
            elif leak := list_leak(rule, caller, world, status, text):
                failures.append(f"{method} {path} as {caller.name}: {leak}")
    assert not failures, f"{len(failures)} of {cells} cells differ from tests/api/auth/route_policy.py:\n" + \
        "\n".join(failures)
    assert cells == len(routes) * len(CALLERS)
