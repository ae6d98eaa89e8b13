"""What staff endpoints share: the role dependencies, id parsing, and keyset pagination cursors. Finding a case
and the audit + engine-reload step every change to a case ends with live in api/cases/service.py."""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from datetime import datetime
from typing import Annotated

import asyncpg
from fastapi import Depends, Query

from api.auth.principals import Staff, require_staff
from api.platform.context import Context, get_context
from api.platform.problems import field_error, not_found
from api.platform.times import in_utc

# Changing what protects a victim is for the case owner; the monitoring room and contact persons read.
WriteStaff = Annotated[Staff, Depends(require_staff("case_director"))]
ReadStaff = Annotated[Staff, Depends(require_staff("case_director", "operator", "contact_person"))]
# Keeping the victim informed (agreements, messages, the timeline, an order's term) is also the contact person's.
InformStaff = Annotated[Staff, Depends(require_staff("case_director", "contact_person"))]
Ctx = Annotated[Context, Depends(get_context)]
Limit = Annotated[int, Query(ge=1, le=500)]
_SEQ_CURSOR = re.compile(r"[0-9]{1,18}")  # ASCII digits only, and always inside a bigint


def parse_id(value: str, what: str) -> uuid.UUID:
    """A malformed id names nothing that exists: 404, as for an unknown one."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise not_found(what) from None


# ---------------------------------------------------------------- keyset pagination on (created_at, id)

def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{row_id}".encode()).decode().rstrip("=")


def _bad_cursor() -> Exception:
    return field_error(["query", "cursor"], "cursor must be a value returned as next_cursor")


def decode_cursor(cursor: str | None) -> tuple[datetime | None, uuid.UUID | None]:
    """The (time, id) a page ends at. Anything a client can put in a cursor is a 422, never a 500: it is decoded,
    and its time must have an offset and lie in the range every client time must (api/platform/times.py)."""
    if cursor is None:
        return None, None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, rid = raw.partition("|")
        return in_utc(datetime.fromisoformat(at)), uuid.UUID(rid)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _bad_cursor() from None


def decode_seq_cursor(cursor: str | None) -> int | None:
    """A cursor that is a position in an ordered log (alerts' ``seq``, the audit chain): a bigint, nothing else."""
    if cursor is None:
        return None
    if not _SEQ_CURSOR.fullmatch(cursor):
        raise _bad_cursor()
    return int(cursor)


def next_cursor(rows: list[asyncpg.Record], limit: int) -> str | None:
    """Rows were fetched with ``limit + 1``: an extra row means there is a next page."""
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    return encode_cursor(last["created_at"], last["id"])
