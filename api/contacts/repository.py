"""The SQL of contact persons: ``staff_members``, ``case_assignments``, ``contact_agreements``, ``contact_log``,
the lists built from them (orphaned cases, overdue follow-ups, staff notices) and the order reads of the
reminder scheduler."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg


STAFF_COLUMNS = "id, sub, display_name, agency, role_title, phone, email, sash_trained, active, deactivated_at, created_at"
_ASSIGNMENT_SELECT = """
SELECT a.id, a.case_id, a.agency, a.function, a.staff_id, s.display_name AS staff_name, s.active AS staff_active,
       a.how_to_reach, a.how_to_reach_i18n AS how_to_reach_by_language, a.when_to_reach, a.assigned_at, a.assigned_by
FROM case_assignments a JOIN staff_members s ON s.id = a.staff_id
"""
_AGREEMENT_COLUMNS = "id, case_id, agency, every_days, channel, next_due_at, last_contact_at, active, created_at"
_NOTICE_COLUMNS = "n.id, n.kind, n.case_id, n.payload, n.created_at, n.delivery, n.agency"

# Need-to-know for items without an owner (orphaned assignments, the agency queue): admins, and case directors
# who reach the case or work for the agency the item belongs to (someone there has to pick it up).
# Its parameters $1-$4 are the viewer's sub, role, agency and operator grace (:func:`viewer_agency`).
_OWNERLESS_VISIBLE = ("($2 = 'admin' OR ($2 = 'case_director' AND ({agency} = $3"
                      " OR staff_may_reach({case}, $1, $2, $4::float8))))")
_HAS_DIRECTOR = ("EXISTS (SELECT 1 FROM case_assignments d JOIN staff_members ds ON ds.id = d.staff_id"
                 " WHERE d.case_id = {case} AND d.function = 'case_director' AND d.ended_at IS NULL AND ds.active)")

Viewer = tuple[str, str, str | None, float]  # sub, role, agency, operator grace in seconds


# ---------------------------------------------------------------- staff members

async def staff_member_by_sub(conn: asyncpg.Connection | asyncpg.Pool, sub: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {STAFF_COLUMNS} FROM staff_members WHERE sub = $1", sub)


async def viewer_agency(conn: asyncpg.Connection, sub: str) -> str | None:
    return await conn.fetchval("SELECT agency FROM staff_members WHERE sub = $1 AND active", sub)


async def insert_staff_member(conn: asyncpg.Connection, values: dict[str, Any], created_by: str) -> asyncpg.Record:
    return await conn.fetchrow(
        f"INSERT INTO staff_members (id, sub, display_name, agency, role_title, phone, email, sash_trained,"
        f" created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {STAFF_COLUMNS}",
        uuid.uuid4(), values["sub"], values["display_name"], values["agency"], values["role_title"],
        values["phone"], values["email"], values["sash_trained"], created_by)


async def staff_page(conn: asyncpg.Connection | asyncpg.Pool, active: bool | None, after_at: datetime | None,
                     after_id: uuid.UUID | None, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {STAFF_COLUMNS} FROM staff_members WHERE ($1::bool IS NULL OR active = $1)"
        " AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3)) ORDER BY created_at, id LIMIT $4",
        active, after_at, after_id, limit + 1)


async def lock_staff_member(conn: asyncpg.Connection, staff_id: uuid.UUID) -> bool:
    return await conn.fetchval("SELECT id FROM staff_members WHERE id = $1 FOR UPDATE", staff_id) is not None


async def update_staff_member(conn: asyncpg.Connection, staff_id: uuid.UUID, changes: dict[str, Any]) -> asyncpg.Record:
    for column, value in changes.items():  # column names come from the model, never from the client
        await conn.execute(f"UPDATE staff_members SET {column} = $2 WHERE id = $1", staff_id, value)
    return await conn.fetchrow(f"SELECT {STAFF_COLUMNS} FROM staff_members WHERE id = $1", staff_id)


async def deactivate_staff_member(conn: asyncpg.Connection, staff_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"UPDATE staff_members SET active = false, deactivated_at = coalesce(deactivated_at, now())"
        f" WHERE id = $1 RETURNING {STAFF_COLUMNS}", staff_id)


async def staff_member_brief(conn: asyncpg.Connection, staff_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT id, agency, active, display_name FROM staff_members WHERE id = $1", staff_id)


# ---------------------------------------------------------------- assignments

async def open_assignments_of(conn: asyncpg.Connection, staff_id: uuid.UUID) -> list[asyncpg.Record]:
    return await conn.fetch(_ASSIGNMENT_SELECT + " WHERE a.staff_id = $1 AND a.ended_at IS NULL"
                            " ORDER BY a.assigned_at, a.id", staff_id)


async def current_assignment(conn: asyncpg.Connection, case_id: uuid.UUID, agency: str,
                             function: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, staff_id FROM case_assignments WHERE case_id = $1 AND agency = $2 AND function = $3"
        " AND ended_at IS NULL FOR UPDATE", case_id, agency, function)


async def update_reach(conn: asyncpg.Connection, assignment_id: uuid.UUID, how_to_reach: str | None,
                       when_to_reach: str | None, how_to_reach_i18n: dict[str, str] | None) -> None:
    await conn.execute("UPDATE case_assignments SET how_to_reach = $2, when_to_reach = $3,"
                       " how_to_reach_i18n = $4 WHERE id = $1",
                       assignment_id, how_to_reach, when_to_reach, how_to_reach_i18n)


async def end_assignment(conn: asyncpg.Connection, assignment_id: uuid.UUID, by: str, reason: str | None) -> None:
    await conn.execute("UPDATE case_assignments SET ended_at = now(), ended_by = $2, ended_reason = $3 WHERE id = $1",
                       assignment_id, by, reason)


async def insert_assignment(conn: asyncpg.Connection, case_id: uuid.UUID, values: dict[str, Any],
                            by: str) -> uuid.UUID:
    assignment_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO case_assignments (id, case_id, agency, function, staff_id, how_to_reach, when_to_reach,"
        " assigned_by, how_to_reach_i18n) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        assignment_id, case_id, values["agency"], values["function"], values["staff_id"], values["how_to_reach"],
        values["when_to_reach"], by, values["how_to_reach_by_language"])
    return assignment_id


async def assignment(conn: asyncpg.Connection, assignment_id: uuid.UUID) -> asyncpg.Record:
    return await conn.fetchrow(_ASSIGNMENT_SELECT + " WHERE a.id = $1", assignment_id)


async def current_assignments(conn: asyncpg.Connection, case_id: uuid.UUID) -> list[asyncpg.Record]:
    return await conn.fetch(_ASSIGNMENT_SELECT + " WHERE a.case_id = $1 AND a.ended_at IS NULL"
                            " ORDER BY a.agency, a.function", case_id)


async def victim_contact_persons(conn: asyncpg.Connection, case_id: uuid.UUID) -> list[asyncpg.Record]:
    """The case's active contact persons with what the victim may know of them: who, and how to reach them."""
    return await conn.fetch(
        "SELECT a.agency, a.how_to_reach, a.how_to_reach_i18n, a.when_to_reach, s.display_name, s.role_title,"
        " s.phone, s.email"
        " FROM case_assignments a JOIN staff_members s ON s.id = a.staff_id"
        " WHERE a.case_id = $1 AND a.function = 'contact_person' AND a.ended_at IS NULL AND s.active", case_id)


# ---------------------------------------------------------------- orphaned cases and notices

async def orphaned_cases(conn: asyncpg.Connection, viewer: Viewer, after_at: datetime | None,
                         after_id: uuid.UUID | None, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "WITH items AS ("
        " SELECT a.case_id, a.agency, a.assigned_at AS since FROM case_assignments a"
        " JOIN staff_members s ON s.id = a.staff_id WHERE a.ended_at IS NULL AND NOT s.active"
        " UNION ALL SELECT n.case_id, n.agency, n.created_at FROM staff_notices n"
        " WHERE n.staff_id IS NULL AND n.case_id IS NOT NULL AND NOT " + _HAS_DIRECTOR.format(case="n.case_id") + ")"
        " SELECT i.case_id, i.case_id AS id, min(i.since) AS created_at, c.reference"
        " FROM items i JOIN cases c ON c.id = i.case_id"
        " WHERE " + _OWNERLESS_VISIBLE.format(agency="i.agency", case="i.case_id") +
        " GROUP BY i.case_id, c.reference"
        " HAVING $5::timestamptz IS NULL OR (min(i.since), i.case_id) > ($5, $6)"
        " ORDER BY min(i.since), i.case_id LIMIT $7", *viewer, after_at, after_id, limit + 1)


async def orphaned_assignments(conn: asyncpg.Connection, case_ids: list[uuid.UUID]) -> list[asyncpg.Record]:
    return await conn.fetch(
        _ASSIGNMENT_SELECT + " WHERE a.case_id = ANY($1::uuid[]) AND a.ended_at IS NULL AND NOT s.active"
        " ORDER BY a.assigned_at, a.id", case_ids)


async def queued_notices(conn: asyncpg.Connection, case_ids: list[uuid.UUID]) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {_NOTICE_COLUMNS} FROM staff_notices n"
        " WHERE n.case_id = ANY($1::uuid[]) AND n.staff_id IS NULL ORDER BY n.created_at, n.id", case_ids)


async def cases_with_director(conn: asyncpg.Connection, case_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    return {r["case_id"] for r in await conn.fetch(
        "SELECT DISTINCT a.case_id FROM case_assignments a JOIN staff_members s ON s.id = a.staff_id"
        " WHERE a.case_id = ANY($1::uuid[]) AND a.ended_at IS NULL AND a.function = 'case_director' AND s.active",
        case_ids)}


async def staff_notices_for(conn: asyncpg.Connection, viewer: Viewer, before_at: datetime | None,
                            before_id: uuid.UUID | None, limit: int) -> list[asyncpg.Record]:
    """The viewer's own notices and the agency queue they may see, newest first, ``limit + 1`` rows."""
    return await conn.fetch(
        f"SELECT {_NOTICE_COLUMNS} FROM staff_notices n"
        " LEFT JOIN staff_members s ON s.id = n.staff_id"
        " WHERE ((s.sub = $1 AND (n.case_id IS NULL OR $2 = 'admin'"
        "        OR staff_may_reach(n.case_id, $1, $2, $4::float8)))"
        "     OR (n.staff_id IS NULL AND " + _OWNERLESS_VISIBLE.format(agency="n.agency", case="n.case_id") + "))"
        " AND ($5::timestamptz IS NULL OR (n.created_at, n.id) < ($5, $6))"
        " ORDER BY n.created_at DESC, n.id DESC LIMIT $7", *viewer, before_at, before_id, limit + 1)


# ---------------------------------------------------------------- contact agreements

async def insert_agreement(conn: asyncpg.Connection, case_id: uuid.UUID, agency: str, every_days: int | None,
                           channel: str, due: datetime, by: str) -> asyncpg.Record:
    return await conn.fetchrow(
        f"INSERT INTO contact_agreements (id, case_id, agency, every_days, channel, next_due_at, created_by)"
        f" VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_AGREEMENT_COLUMNS}",
        uuid.uuid4(), case_id, agency, every_days, channel, due, by)


async def agreements(conn: asyncpg.Connection, case_id: uuid.UUID) -> list[asyncpg.Record]:
    return await conn.fetch(f"SELECT {_AGREEMENT_COLUMNS} FROM contact_agreements WHERE case_id = $1"
                            " ORDER BY created_at, id", case_id)


async def lock_agreement(conn: asyncpg.Connection, case_id: uuid.UUID,
                         agreement_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {_AGREEMENT_COLUMNS} FROM contact_agreements WHERE id = $1 AND case_id = $2"
                               " FOR UPDATE", agreement_id, case_id)


async def log_contact(conn: asyncpg.Connection, agreement_id: uuid.UUID, at: datetime, channel: str,
                      note: str | None, by: str) -> None:
    await conn.execute(
        "INSERT INTO contact_log (id, agreement_id, contacted_at, channel, note, created_by)"
        " VALUES ($1, $2, $3, $4, $5, $6)", uuid.uuid4(), agreement_id, at, channel, note, by)


async def advance_agreement(conn: asyncpg.Connection, agreement_id: uuid.UUID, last: datetime) -> asyncpg.Record:
    """The next contact is due ``every_days`` after the last one; a one-off promise is kept and ends."""
    return await conn.fetchrow(
        f"UPDATE contact_agreements SET last_contact_at = $2::timestamptz,"
        f" next_due_at = CASE WHEN every_days IS NULL THEN next_due_at"
        f"                    ELSE $2::timestamptz + make_interval(days => every_days) END,"
        f" active = every_days IS NOT NULL"
        f" WHERE id = $1 RETURNING {_AGREEMENT_COLUMNS}", agreement_id, last)


async def end_agreement(conn: asyncpg.Connection, agreement_id: uuid.UUID) -> asyncpg.Record:
    return await conn.fetchrow(f"UPDATE contact_agreements SET active = false WHERE id = $1"
                               f" RETURNING {_AGREEMENT_COLUMNS}", agreement_id)


async def next_agreed_contact(conn: asyncpg.Connection, case_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT next_due_at, agency, channel FROM contact_agreements WHERE case_id = $1 AND active"
        " ORDER BY next_due_at LIMIT 1", case_id)


async def overdue_agreements(conn: asyncpg.Connection | asyncpg.Pool, now: datetime, staff_id: uuid.UUID | None,
                             viewer_sub: str | None, viewer_role: str | None, grace_s: float,
                             after_at: datetime | None, after_id: uuid.UUID | None,
                             limit: int | None) -> list[asyncpg.Record]:
    """Active agreements past their next contact date, oldest first, each with the agency's current, active
    contact person (null: nobody); with a viewer, only cases the viewer may reach."""
    return await conn.fetch(
        """
        SELECT g.id AS agreement_id, g.case_id, c.reference AS case_reference, g.agency, g.every_days, g.channel,
               g.next_due_at, g.next_due_at AS created_at, g.id, s.id AS staff_id, s.display_name AS staff_name
        FROM contact_agreements g
        JOIN cases c ON c.id = g.case_id
        LEFT JOIN case_assignments a ON a.case_id = g.case_id AND a.agency = g.agency
             AND a.function = 'contact_person' AND a.ended_at IS NULL
        LEFT JOIN staff_members s ON s.id = a.staff_id AND s.active
        WHERE g.active AND c.status = 'active' AND g.next_due_at < $1 AND ($2::uuid IS NULL OR s.id = $2)
          AND ($3::text IS NULL OR $4 = 'admin' OR staff_may_reach(g.case_id, $3, $4, $5::float8))
          AND ($6::timestamptz IS NULL OR (g.next_due_at, g.id) > ($6, $7))
        ORDER BY g.next_due_at, g.id LIMIT $8
        """, now, staff_id, viewer_sub, viewer_role, grace_s, after_at, after_id,
        None if limit is None else limit + 1)


# ---------------------------------------------------------------- orders, as the reminder scheduler reads them

async def orders_ending(conn: asyncpg.Connection, now: datetime, horizon: datetime) -> list[asyncpg.Record]:
    """Orders of active cases, not let go, ending after ``now`` and by ``horizon``."""
    return await conn.fetch(
        "SELECT o.id, o.case_id, o.kind, o.reference, o.valid_until, c.reference AS case_reference"
        " FROM orders o JOIN cases c ON c.id = o.case_id"
        " WHERE c.status = 'active' AND o.let_go_at IS NULL AND o.valid_until > $1 AND o.valid_until <= $2",
        now, horizon)


async def orders_ending_with_victim(conn: asyncpg.Connection, now: datetime,
                                    horizon: datetime) -> list[asyncpg.Record]:
    """As :func:`orders_ending`, of cases with a victim, soonest first."""
    return await conn.fetch(
        "SELECT o.id, o.case_id, o.kind, o.valid_until FROM orders o JOIN cases c ON c.id = o.case_id"
        " WHERE c.status = 'active' AND o.let_go_at IS NULL AND o.valid_until > $1 AND o.valid_until <= $2"
        " AND EXISTS (SELECT 1 FROM parties p WHERE p.case_id = o.case_id AND p.role = 'victim')"
        " ORDER BY o.valid_until, o.id", now, horizon)


async def claim_expired_order(conn: asyncpg.Connection, now: datetime) -> asyncpg.Record | None:
    """One order past its end, not yet handled for that end, locked (SKIP LOCKED: another process handling the
    same order is left to it)."""
    return await conn.fetchrow(
        "SELECT o.id, o.case_id, o.kind, o.reference, o.valid_until, o.let_go_at, o.let_go_reason,"
        " c.reference AS case_reference FROM orders o JOIN cases c ON c.id = o.case_id"
        " WHERE c.status = 'active' AND o.valid_until <= $1"
        " AND o.expiry_handled_until IS DISTINCT FROM o.valid_until"
        " ORDER BY o.valid_until, o.id LIMIT 1 FOR UPDATE OF o SKIP LOCKED", now)


async def has_victim(conn: asyncpg.Connection, case_id: uuid.UUID) -> bool:
    return await conn.fetchval("SELECT EXISTS (SELECT 1 FROM parties WHERE case_id = $1 AND role = 'victim')", case_id)


async def mark_expiry_handled(conn: asyncpg.Connection, order_id: uuid.UUID) -> None:
    """The one write to ``orders`` outside api/cases: the scheduler marks the end date it has handled, in the
    same transaction as what it tells, so an end is handled exactly once."""
    await conn.execute("UPDATE orders SET expiry_handled_until = valid_until WHERE id = $1", order_id)

