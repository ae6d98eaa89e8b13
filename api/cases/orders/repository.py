"""All SQL of orders and their extensions."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

ORDER_COLUMNS = ("id, case_id, kind, reference, valid_from, valid_until, created_at, created_by, legal_basis,"
                 " extension_count, let_go_at, let_go_reason")
_EXT_COLUMNS = "id, order_id, n, previous_until, valid_until, reference, created_at, created_by"


async def fetch_orders(conn: asyncpg.Connection, case_id: uuid.UUID, limit: int | None = None,
                       after_at: datetime | None = None, after_id: uuid.UUID | None = None) -> list[asyncpg.Record]:
    """Oldest first; with a ``limit``, ``limit + 1`` rows after the (created_at, id) a page ended at."""
    return await conn.fetch(
        f"SELECT {ORDER_COLUMNS} FROM orders WHERE case_id = $1"
        " AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3)) ORDER BY created_at, id LIMIT $4",
        case_id, after_at, after_id, None if limit is None else limit + 1,
    )


async def insert_order(conn: asyncpg.Connection, case_id: uuid.UUID, kind: str, reference: str, valid_from: datetime,
                       valid_until: datetime | None, created_by: str, legal_basis: str | None) -> asyncpg.Record:
    return await conn.fetchrow(
        f"INSERT INTO orders (id, case_id, kind, reference, valid_from, valid_until, created_by, legal_basis)"
        f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {ORDER_COLUMNS}",
        uuid.uuid4(), case_id, kind, reference, valid_from, valid_until, created_by, legal_basis,
    )


async def order_kind(conn: asyncpg.Connection, order_id: uuid.UUID, case_id: uuid.UUID) -> str | None:
    """The kind of the case's order, or None when the case has no such order."""
    return await conn.fetchval("SELECT kind FROM orders WHERE id = $1 AND case_id = $2", order_id, case_id)


async def lock_order(conn: asyncpg.Connection, order_id: uuid.UUID, case_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {ORDER_COLUMNS}, expiry_handled_until FROM orders WHERE id = $1 AND case_id = $2"
                               " FOR UPDATE", order_id, case_id)


async def insert_extension(conn: asyncpg.Connection, order_id: uuid.UUID, n: int, previous_until: datetime,
                           valid_until: datetime, reference: str, created_by: str) -> asyncpg.Record:
    return await conn.fetchrow(
        f"INSERT INTO order_extensions (id, order_id, n, previous_until, valid_until, reference, created_by)"
        f" VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_EXT_COLUMNS}",
        uuid.uuid4(), order_id, n, previous_until, valid_until, reference, created_by)


async def extend(conn: asyncpg.Connection, order_id: uuid.UUID, valid_until: datetime, extension_count: int) -> None:
    # A granted extension overrides an earlier decision to let the order go.
    await conn.execute("UPDATE orders SET valid_until = $2, extension_count = $3, let_go_at = NULL,"
                       " let_go_by = NULL, let_go_reason = NULL WHERE id = $1", order_id, valid_until, extension_count)


async def fetch_extensions(conn: asyncpg.Connection, order_id: uuid.UUID) -> list[asyncpg.Record]:
    return await conn.fetch(f"SELECT {_EXT_COLUMNS} FROM order_extensions WHERE order_id = $1 ORDER BY n", order_id)


async def let_go(conn: asyncpg.Connection, order_id: uuid.UUID, by: str, reason: str) -> asyncpg.Record:
    return await conn.fetchrow(
        f"UPDATE orders SET let_go_at = now(), let_go_by = $2, let_go_reason = $3 WHERE id = $1"
        f" RETURNING {ORDER_COLUMNS}", order_id, by, reason)


async def orders_ending(conn: asyncpg.Connection, now: datetime, window_s: float, viewer_sub: str, viewer_role: str,
                        grace_s: float, after_at: datetime | None, after_id: uuid.UUID | None,
                        limit: int) -> list[asyncpg.Record]:
    """Orders of active cases the viewer may reach that end within the window, and those extended within the
    window that were then ending within it (so the decision stays in view), by the end they were heading for
    (``due_at``, aliased ``created_at`` for the cursor), ``limit + 1`` rows."""
    return await conn.fetch(
        f"""
        WITH listed AS (
            SELECT o.*, c.reference AS case_reference, e.created_at AS extended_at, e.previous_until,
                   e.reference AS extension_reference,
                   CASE WHEN o.valid_until > $1 AND o.valid_until <= $1 + make_interval(secs => $2)
                        THEN o.valid_until ELSE e.previous_until END AS due_at
            FROM orders o JOIN cases c ON c.id = o.case_id
            LEFT JOIN LATERAL (SELECT x.created_at, x.previous_until, x.reference FROM order_extensions x
                               WHERE x.order_id = o.id ORDER BY x.n DESC LIMIT 1) e ON true
            WHERE c.status = 'active'
              AND ($4 = 'admin' OR staff_may_reach(o.case_id, $3, $4, $5::float8))
              AND ((o.valid_until > $1 AND o.valid_until <= $1 + make_interval(secs => $2))
                   OR (e.created_at > $1 - make_interval(secs => $2)
                       AND e.previous_until <= e.created_at + make_interval(secs => $2)))
        )
        SELECT {", ".join("l." + c.strip() for c in ORDER_COLUMNS.split(","))}, l.case_reference, l.extended_at,
               l.previous_until, l.extension_reference, l.due_at, l.due_at AS created_at
        FROM listed l
        WHERE $6::timestamptz IS NULL OR (l.due_at, l.id) > ($6, $7)
        ORDER BY l.due_at, l.id LIMIT $8
        """, now, window_s, viewer_sub, viewer_role, grace_s, after_at, after_id, limit + 1)
