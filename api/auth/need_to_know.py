"""Need-to-know: which staff member may reach which case, decided in one place.

The rule itself is the SQL function ``staff_may_reach`` (migrations/0005_access.sql), so single-case checks and
list filters can never disagree. This module applies it:

* :func:`need_to_know` is an application-wide dependency (``FastAPI(dependencies=...)`` in api/app.py): every
  route that authenticates staff and names a ``case_id`` or ``alert_id`` in its path is checked before its
  handler runs. A route added later is covered without doing anything.
* :func:`visible_case_ids` and :func:`reach_filter` serve the list routes (``GET /v1/cases``,
  ``GET /v1/alerts``, the alert stream), which show only what the caller may reach.

A staff member who may not reach an existing case gets **404**, exactly as for a case that does not exist: the
answer must not tell a curious colleague (or someone with a stolen token) that a case exists. Each denial is
written to the audit log (``access.denied``), so probing is visible to the auditor.
"""

from __future__ import annotations

import uuid
from typing import Any

import anyio
import asyncpg
from starlette.requests import HTTPConnection

from api.auth import repository
from api.privacy import audit
from api.auth.principals import Staff, decode_staff_token, staff_principal
from api.platform.context import Context
from api.platform.problems import Problem, not_found

RELATIONS = ("case_director", "contact_person", "prosecutor_coordinator")
_staff_routes: dict[int, bool] = {}


def _takes_staff(route: Any) -> bool:
    """Whether the route authenticates staff (its dependency tree reaches ``staff_principal``)."""
    key = id(route)
    if key not in _staff_routes:
        found = False
        stack = [getattr(route, "dependant", None)]
        while stack and not found:
            dep = stack.pop()
            if dep is None:
                continue
            found = dep.call is staff_principal
            stack.extend(dep.dependencies)
        _staff_routes[key] = found
    return _staff_routes[key]


def _bearer(conn: HTTPConnection) -> str | None:
    scheme, _, token = conn.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def staff_from_token(ctx: Context, token: str) -> Staff:
    """``decode_staff_token`` for async code: with OIDC it may fetch the issuer's keys, so off the event loop."""
    if ctx.settings.oidc_issuer:
        return await anyio.to_thread.run_sync(decode_staff_token, ctx, token)
    return decode_staff_token(ctx, token)


async def staff_of(conn: HTTPConnection, ctx: Context) -> Staff | None:
    """The staff member behind the request's bearer token, or None (no token, a device token, a bad token:
    the route's own authentication then gives its 401/403)."""
    token = _bearer(conn)
    if token is None:
        return None
    try:
        return await staff_from_token(ctx, token)
    except Problem:
        return None


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


async def may_reach(db: asyncpg.Connection | asyncpg.Pool, ctx: Context, staff: Staff, case_id: uuid.UUID) -> bool:
    return await repository.may_reach(db, case_id, staff.sub, staff.role, ctx.settings.operator_grace_s)


async def need_to_know(conn: HTTPConnection) -> None:
    """Refuse (404) a staff caller who may not reach the case named by the path's ``case_id`` or ``alert_id``."""
    route = conn.scope.get("route")
    params = conn.path_params
    if route is None or not ({"case_id", "alert_id"} & params.keys()) or not _takes_staff(route):
        return
    ctx: Context = conn.app.state.ctx
    staff = await staff_of(conn, ctx)
    if staff is None:
        return
    what = "case" if "case_id" in params else "alert"
    target = _uuid(params.get("case_id") if what == "case" else params.get("alert_id"))
    if target is None:
        return  # a malformed id names nothing: the handler answers 404 itself
    async with ctx.pool.acquire() as db:
        row = await repository.reach_of_target(db, what, target, staff.sub, staff.role, ctx.settings.operator_grace_s)
        if row is None or row["ok"]:
            return  # unknown: the handler's own 404; reachable: go on
        await audit.record(db, actor=staff.actor, role=staff.role, action="access.denied", case_id=row["case_id"],
                           detail={"method": conn.scope.get("method", "WEBSOCKET"), "route": getattr(route, "path", "")})
    raise not_found(what)


def sees_outages(staff: Staff) -> bool:
    """A supplier outage alert belongs to no case: the monitoring room sees it, case staff do not (its detail lists
    cases they may not reach)."""
    return staff.role in ("admin", "operator")


async def visible_case_ids(db: asyncpg.Connection | asyncpg.Pool, ctx: Context, staff: Staff) -> list[uuid.UUID] | None:
    """The cases ``staff`` may reach; None means every case (admin)."""
    if staff.role == "admin":
        return None
    return await repository.reachable_cases(db, staff.sub, staff.role, ctx.settings.operator_grace_s)


async def reach_filter(db: asyncpg.Connection | asyncpg.Pool, ctx: Context, staff: Staff,
                       case_ids: set[uuid.UUID]) -> set[uuid.UUID]:
    """Of ``case_ids``, those ``staff`` may reach (for streams that see many cases at once)."""
    if staff.role == "admin" or not case_ids:
        return set(case_ids)
    return await repository.reachable_among(db, case_ids, staff.sub, staff.role, ctx.settings.operator_grace_s)


async def grant(conn: asyncpg.Connection, case_id: uuid.UUID, staff_sub: str, relation: str, *, by: str,
                reason: str | None = None) -> tuple[uuid.UUID, bool]:
    """Give ``staff_sub`` reach to the case as ``relation``; an existing grant changes its relation.
    Returns (grant id, whether anything changed)."""
    if relation not in RELATIONS:
        raise ValueError(f"relation must be one of {RELATIONS}")
    current = await repository.current_grant(conn, case_id, staff_sub)
    if current is not None:
        if current["relation"] == relation:
            return current["id"], False
        await repository.change_relation(conn, current["id"], relation)
        return current["id"], True
    gid = uuid.uuid4()
    await repository.insert_grant(conn, gid, case_id, staff_sub, relation, by, reason)
    return gid, True
