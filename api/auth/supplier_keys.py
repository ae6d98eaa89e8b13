"""Supplier HMAC key rotation: a supplier may hold two active keys, so it switches to a new secret before the
old one is revoked and no request fails in between. Used by the admin routes (api/auth/endpoints.py) and by
``afstand supplier rotate`` / ``afstand supplier revoke``."""

from __future__ import annotations

import secrets
from typing import Any

import asyncpg

from api.privacy import audit
from api.platform.problems import conflict, not_found
from api.platform.secrets import encrypt

MAX_ACTIVE_KEYS = 2


async def rotate_key(conn: asyncpg.Connection, key: bytes, key_id: str, actor: str, role: str) -> dict[str, Any]:
    """A second active key for the supplier of ``key_id``; the secret is returned once. Shared by the admin route
    and ``afstand supplier rotate``."""
    async with conn.transaction():
        old = await conn.fetchrow("SELECT key_id, supplier_id FROM supplier_keys WHERE key_id = $1 AND revoked_at IS NULL",
                                  key_id)
        if old is None:
            raise not_found("active supplier key")
        await conn.execute("SELECT 1 FROM suppliers WHERE id = $1 FOR UPDATE", old["supplier_id"])
        active = await conn.fetchval("SELECT count(*) FROM supplier_keys WHERE supplier_id = $1 AND revoked_at IS NULL",
                                     old["supplier_id"])
        if active >= MAX_ACTIVE_KEYS:
            raise conflict(f"this supplier already has {active} active keys; revoke the old one before rotating again")
        new_id, secret = "sk_" + secrets.token_hex(8), secrets.token_urlsafe(32)
        row = await conn.fetchrow(
            "INSERT INTO supplier_keys (key_id, supplier_id, secret_enc, replaces) VALUES ($1, $2, $3, $4)"
            " RETURNING key_id, supplier_id, replaces, created_at, revoked_at",
            new_id, old["supplier_id"], encrypt(key, secret), key_id)
        await audit.record(conn, actor=actor, role=role, action="supplier_key.rotate",
                           detail={"supplier_id": str(old["supplier_id"]), "key_id": new_id, "replaces": key_id})
    return {**dict(row), "secret": secret}


async def revoke_key(conn: asyncpg.Connection, key_id: str, actor: str, role: str) -> dict[str, Any]:
    async with conn.transaction():
        row = await conn.fetchrow(
            "UPDATE supplier_keys SET revoked_at = coalesce(revoked_at, now()) WHERE key_id = $1"
            " RETURNING key_id, supplier_id, replaces, created_at, revoked_at", key_id)
        if row is None:
            raise not_found("supplier key")
        await audit.record(conn, actor=actor, role=role, action="supplier_key.revoke",
                           detail={"supplier_id": str(row["supplier_id"]), "key_id": key_id})
    return dict(row)
