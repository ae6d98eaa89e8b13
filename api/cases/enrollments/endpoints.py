"""Enrollment codes of a case (mounted under /v1/cases by api/cases/endpoints.py)."""

from __future__ import annotations

from fastapi import APIRouter

from api.cases.enrollments import service
from api.cases.enrollments.schemas import EnrollmentOut
from api.platform.staff_common import Ctx, WriteStaff

router = APIRouter(tags=["enrollments"])


@router.post("/{case_id}/enrollments", status_code=201, response_model=EnrollmentOut)
async def create_enrollment(case_id: str, ctx: Ctx, staff: WriteStaff) -> EnrollmentOut:
    """Issue a one-time code for the victim's app, valid for ``AFSTAND_ENROLLMENT_TTL_S``.

    The code is ``lookup`` (8 characters) followed by ``secret`` (16 characters); only the lookup and
    ``token_hash(secret)`` are stored, so the code is shown here once. A new code replaces any unused earlier
    one for the case: only the most recent code handed to the victim can enroll a device.
    """
    code, expires_at = await service.create_enrollment(ctx.pool, staff, case_id, ctx.settings.enrollment_ttl_s)
    return EnrollmentOut(code=code, expires_at=expires_at)
