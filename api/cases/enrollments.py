"""One-time enrollment codes that bind the victim's app to her case."""

from __future__ import annotations

import secrets
from datetime import timedelta

import asyncpg
from fastapi import APIRouter

from api.cases.service import case_or_404, changed
from api.platform.staff_common import Ctx, WriteStaff
from api.cases.schemas import EnrollmentOut
from api.platform.secrets import token_hash

router = APIRouter(tags=["enrollments"])  # mounted under /v1/cases by cases.py

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


@router.post("/{case_id}/enrollments", status_code=201, response_model=EnrollmentOut)
async def create_enrollment(case_id: str, ctx: Ctx, staff: WriteStaff) -> EnrollmentOut:
    """Issue a one-time code for the victim's app, valid for ``AFSTAND_ENROLLMENT_TTL_S``.

    The code is ``lookup`` (8 characters) followed by ``secret`` (16 characters); only the lookup and
    ``token_hash(secret)`` are stored, so the code is shown here once. A new code replaces any unused earlier
    one for the case: only the most recent code handed to the victim can enroll a device.
    """
    async with ctx.pool.acquire() as conn, conn.transaction():
        cid = await case_or_404(conn, case_id, lock=True)
        await conn.execute(
            "UPDATE enrollments SET expires_at = now() WHERE case_id = $1 AND used_at IS NULL AND expires_at > now()", cid
        )
        for _ in range(5):  # 40-bit lookups practically never collide; retry rather than fail if one does
            lookup, secret = new_code()
            try:
                async with conn.transaction():
                    expires_at = await conn.fetchval(
                        "INSERT INTO enrollments (lookup, secret_hash, case_id, expires_at, created_by)"
                        " VALUES ($1, $2, $3, now() + $4::interval, $5) RETURNING expires_at",
                        lookup, token_hash(secret), cid, timedelta(seconds=ctx.settings.enrollment_ttl_s), staff.actor,
                    )
                break
            except asyncpg.UniqueViolationError:
                continue
        else:
            raise RuntimeError("could not draw a unique enrollment lookup")
        # The secret never reaches the audit log; the lookup identifies which code was issued.
        await changed(conn, staff, "enrollment.create", cid, {"lookup": lookup, "expires_at": expires_at.isoformat()},
                      engine=False)
    return EnrollmentOut(code=lookup + secret, expires_at=expires_at)
