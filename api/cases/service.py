"""Use cases of the case itself: open a case, list and read cases, change the contact ban's distances. Also the
two steps every change to a case's protection shares: find the case, and audit the change and wake the engine."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from api.auth.principals import Staff
from api.cases import repository
from api.platform.problems import not_found
from api.platform.staff_common import parse_id
from api.privacy import audit


async def case_or_404(conn: asyncpg.Connection, case_id: str, *, lock: bool = False) -> uuid.UUID:
    """The case's id; a malformed or unknown one is a 404. ``lock`` holds the case while its parts change."""
    cid = parse_id(case_id, "case")
    if not await repository.case_exists(conn, cid, lock=lock):
        raise not_found("case")
    return cid


async def changed(
    conn: asyncpg.Connection,
    staff: Staff,
    action: str,
    case_id: uuid.UUID,
    detail: dict[str, Any],
    *,
    reason: str | None = None,
    engine: bool = True,
) -> None:
    """Audit a change and, when it alters what the engine enforces, tell the engine to reload the case.

    Call inside the change's transaction: the audit row commits with the change or not at all, and the engine
    is woken only on commit. ``detail`` must never hold coordinates or secrets: the audit log is read widely.
    """
    await audit.record(conn, actor=staff.actor, role=staff.role, action=action, case_id=case_id, reason=reason,
                       detail=detail)
    if engine:
        await repository.wake_engine(conn, case_id)
