"""Managing need-to-know (SECURITY.md, "Need-to-know"): who is granted a case, which cases an operator watches,
and the rotation of suppliers' HMAC keys. Every change is audited in the transaction that makes it.

A supplier may hold two active keys, so it switches to a new secret before the old one is revoked and no
request fails in between; the key use cases serve the admin routes and ``afstand supplier rotate`` / ``revoke``.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import asyncpg

from api.auth import need_to_know, repository
from api.auth.principals import Staff
from api.auth.schemas import AccessOut, GrantIn, GrantOut, WatcherOut
from api.platform.problems import conflict, not_found
from api.platform.secrets import encrypt
from api.cases.service import case_or_404
from api.privacy import audit

MAX_ACTIVE_KEYS = 2


async def _access(conn: asyncpg.Connection, case_id: uuid.UUID) -> AccessOut:
    grants = await repository.grants(conn, case_id)
    watchers = await repository.watchers(conn, case_id)
    return AccessOut(case_id=case_id, grants=[GrantOut(**dict(g)) for g in grants],
                     watchers=[WatcherOut(**dict(w)) for w in watchers])


async def list_access(pool: asyncpg.Pool, case_id: str) -> AccessOut:
    async with pool.acquire() as conn:
        cid = await case_or_404(conn, case_id)
        return await _access(conn, cid)


async def grant_access(pool: asyncpg.Pool, staff: Staff, case_id: str, body: GrantIn) -> AccessOut:
    async with pool.acquire() as conn, conn.transaction():
        cid = await case_or_404(conn, case_id, lock=True)
        gid, changed = await need_to_know.grant(conn, cid, body.staff_sub, body.relation, by=staff.actor,
                                                reason=body.reason)
        if changed:
            await audit.record(conn, actor=staff.actor, role=staff.role, action="access.grant", case_id=cid,
                               reason=body.reason, detail={"grant_id": str(gid), "staff_sub": body.staff_sub,
                                                           "relation": body.relation})
        return await _access(conn, cid)


async def end_access(pool: asyncpg.Pool, staff: Staff, case_id: str, staff_sub: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        cid = await case_or_404(conn, case_id, lock=True)
        gid = await repository.end_grant(conn, cid, staff_sub, staff.actor)
        if gid is None:
            raise not_found("grant")
        await audit.record(conn, actor=staff.actor, role=staff.role, action="access.end", case_id=cid,
                           detail={"grant_id": str(gid), "staff_sub": staff_sub})


async def add_watcher(pool: asyncpg.Pool, staff: Staff, case_id: str, staff_sub: str) -> AccessOut:
    async with pool.acquire() as conn, conn.transaction():
        cid = await case_or_404(conn, case_id, lock=True)
        if await repository.add_watcher(conn, cid, staff_sub, staff.actor):
            await audit.record(conn, actor=staff.actor, role=staff.role, action="watch.add", case_id=cid,
                               detail={"staff_sub": staff_sub})
        return await _access(conn, cid)


async def remove_watcher(pool: asyncpg.Pool, staff: Staff, case_id: str, staff_sub: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        cid = await case_or_404(conn, case_id, lock=True)
        if not await repository.remove_watcher(conn, cid, staff_sub):
            raise not_found("watcher")
        await audit.record(conn, actor=staff.actor, role=staff.role, action="watch.remove", case_id=cid,
                           detail={"staff_sub": staff_sub})


# ---------------------------------------------------------------- supplier keys

def _new_key() -> tuple[str, str]:
    return "sk_" + secrets.token_hex(8), secrets.token_urlsafe(32)


async def register_supplier(conn: asyncpg.Connection, key: bytes, name: str) -> dict[str, str]:
    """The supplier ``name`` (created when new) and a new key for it; the secret is returned once."""
    key_id, secret = _new_key()
    async with conn.transaction():
        supplier_id = await repository.upsert_supplier(conn, name)
        await repository.insert_key(conn, key_id, supplier_id, encrypt(key, secret))
    return {"key_id": key_id, "secret": secret}


async def rotate_key(conn: asyncpg.Connection, key: bytes, key_id: str, actor: str, role: str) -> dict[str, Any]:
    """A second active key for the supplier of ``key_id``; the secret is returned once."""
    async with conn.transaction():
        old = await repository.active_key(conn, key_id)
        if old is None:
            raise not_found("active supplier key")
        await repository.lock_supplier(conn, old["supplier_id"])
        active = await repository.count_active_keys(conn, old["supplier_id"])
        if active >= MAX_ACTIVE_KEYS:
            raise conflict(f"this supplier already has {active} active keys; revoke the old one before rotating again")
        new_id, secret = _new_key()
        row = await repository.insert_key(conn, new_id, old["supplier_id"], encrypt(key, secret), key_id)
        await audit.record(conn, actor=actor, role=role, action="supplier_key.rotate",
                           detail={"supplier_id": str(old["supplier_id"]), "key_id": new_id, "replaces": key_id})
    return {**dict(row), "secret": secret}


async def revoke_key(conn: asyncpg.Connection, key_id: str, actor: str, role: str) -> dict[str, Any]:
    """Revoke a key at once; a retried revoke changes nothing."""
    async with conn.transaction():
        row = await repository.revoke_key(conn, key_id)
        if row is None:
            raise not_found("supplier key")
        await audit.record(conn, actor=actor, role=role, action="supplier_key.revoke",
                           detail={"supplier_id": str(row["supplier_id"]), "key_id": key_id})
    return dict(row)


async def rotate_by_staff(pool: asyncpg.Pool, key: bytes, key_id: str, staff: Staff) -> dict[str, Any]:
    async with pool.acquire() as conn:
        return await rotate_key(conn, key, key_id, staff.actor, staff.role)


async def revoke_by_staff(pool: asyncpg.Pool, key_id: str, staff: Staff) -> dict[str, Any]:
    async with pool.acquire() as conn:
        return await revoke_key(conn, key_id, staff.actor, staff.role)
