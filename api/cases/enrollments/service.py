"""Issue a one-time enrollment code for the victim's app."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import asyncpg

from api.auth.principals import Staff
from api.cases.enrollments import repository
from api.cases.service import case_or_404, changed
from api.platform.secrets import token_hash

# Upper-case letters and digits without 0/O and 1/I: the code is read aloud or typed from paper.
ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # 32 symbols: 5 bits each
LOOKUP_LEN = 8    # public part, the table's key
SECRET_LEN = 16   # 80 bits; stored only as a hash


def _random(n: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(n))


def new_code() -> tuple[str, str]:
    """``(lookup, secret)``. The code handed out is ``lookup + secret`` with no separator, so redeeming splits it
    as ``code[:8]`` (lookup, finds the row) and ``code[8:]`` (secret, compared with ``secret_hash``)."""
    return _random(LOOKUP_LEN), _random(SECRET_LEN)


async def create_enrollment(pool: asyncpg.Pool, staff: Staff, case_id: str, ttl_s: int) -> tuple[str, datetime]:
    """The code (shown once) and when it expires. A new code replaces any unused earlier one for the case."""
    async with pool.acquire() as conn, conn.transaction():
        cid = await case_or_404(conn, case_id, lock=True)
        await repository.expire_unused(conn, cid)
        for _ in range(5):  # 40-bit lookups practically never collide; retry rather than fail if one does
            lookup, secret = new_code()
            try:
                async with conn.transaction():
                    expires_at = await repository.insert_code(conn, lookup, token_hash(secret), cid,
                                                              timedelta(seconds=ttl_s), staff.actor)
                break
            except asyncpg.UniqueViolationError:
                continue
        else:
            raise RuntimeError("could not draw a unique enrollment lookup")
        # The secret never reaches the audit log; the lookup identifies which code was issued.
        await changed(conn, staff, "enrollment.create", cid, {"lookup": lookup, "expires_at": expires_at.isoformat()})
    return lookup + secret, expires_at
