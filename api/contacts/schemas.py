"""Vocabulary for keeping the victim informed (each word has catalogue texts), and the bodies of staff members,
assignments, contact agreements and staff notices; also, until api/cases takes them, those of the timeline, order
terms, risk screening and the feasibility check. The victim's views are in api/victim/schemas.py, the thread's
and the notices' in api/contacts/thread and api/contacts/notices.

Request models forbid unknown fields, as in api/cases/schemas.py.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, model_validator

from api.platform.times import Instant

# ---------------------------------------------------------------- vocabulary (each word has catalogue texts)

AGENCIES = ("police", "prosecutor", "probation", "victim_support", "veilig_thuis")
# The victim has one contact person at each of these; the app always lists all four.
VICTIM_AGENCIES = ("police", "prosecutor", "probation", "victim_support")
FUNCTIONS = ("contact_person", "case_director")
# Events that move the case to a new stage, in the order a case usually passes them.
STAGE_EVENTS = (
    "report_filed", "investigation_started", "forwarded_to_prosecutor", "charged", "hearing_scheduled", "verdict",
    "sentence_execution", "case_closed",
)
STAGES = ("registered",) + STAGE_EVENTS
EVENT_KINDS = STAGE_EVENTS + (
    "order_imposed", "order_extended", "order_expired", "order_let_go", "offender_released", "offender_on_leave",
    "monitoring_started", "monitoring_ended", "contact_reassigned", "note",
)
CHANNELS = ("app", "phone", "email", "letter", "visit")
FREQUENCIES = ("on_change", "weekly", "every_two_weeks", "monthly")
ORDER_STATUSES = ("active", "upcoming", "expired")
RISK_LEVELS = ("low", "medium", "high")
# What a SASH level proposes for the contact ban (warn_m, alert_m). A proposal: staff set the case's distances.
RISK_PROXIMITY = {"low": (500.0, 250.0), "medium": (1000.0, 500.0), "high": (2000.0, 1000.0)}

Agency = Literal[AGENCIES]  # type: ignore[valid-type]
Function = Literal[FUNCTIONS]  # type: ignore[valid-type]
Channel = Literal[CHANNELS]  # type: ignore[valid-type]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Page(BaseModel):
    items: list[Any]
    next_cursor: str | None


# ---------------------------------------------------------------- staff members and assignments

class StaffMemberCreate(_Request):
    sub: str = Field(min_length=1, max_length=200, description="the subject of this person's staff token")
    display_name: str = Field(min_length=1, max_length=200)
    agency: Agency
    role_title: str = Field(min_length=1, max_length=200, description="e.g. 'wijkagent', 'slachtoffercoördinator'")
    phone: str | None = Field(default=None, max_length=50)
    email: str | None = Field(default=None, max_length=200)
    sash_trained: StrictBool = False


class StaffMemberPatch(_Request):
    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    role_title: str | None = Field(default=None, min_length=1, max_length=200)
    phone: str | None = Field(default=None, max_length=50)
    email: str | None = Field(default=None, max_length=200)
    sash_trained: StrictBool | None = None


class StaffMemberOut(BaseModel):
    id: uuid.UUID
    sub: str
    display_name: str
    agency: str
    role_title: str
    phone: str | None
    email: str | None
    sash_trained: bool
    active: bool
    deactivated_at: datetime | None
    created_at: datetime


class StaffMemberPage(Page):
    items: list[StaffMemberOut]


class Deactivate(_Request):
    reason: str = Field(min_length=1, max_length=1000)


class AssignmentIn(_Request):
    agency: Agency
    function: Function
    staff_id: uuid.UUID
    how_to_reach: str | None = Field(default=None, max_length=500, description="e.g. 'call 0900-8844, ask for …'")
    how_to_reach_by_language: dict[Literal["nl", "en"], str] = Field(
        default_factory=dict, description="the same in the victim's language, e.g. {'nl': 'bel …', 'en': 'call …'};"
                                          " the victim reads hers, else how_to_reach")
    when_to_reach: str | None = Field(default=None, max_length=500, description="e.g. 'weekdays 9–17'")
    reason: str | None = Field(default=None, max_length=1000)


class AssignmentOut(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    agency: str
    function: str
    staff_id: uuid.UUID
    staff_name: str
    staff_active: bool
    how_to_reach: str | None
    how_to_reach_by_language: dict[str, str] = Field(default_factory=dict)
    when_to_reach: str | None
    assigned_at: datetime
    assigned_by: str


class AssignmentList(BaseModel):
    items: list[AssignmentOut]


class DeactivateOut(BaseModel):
    staff: StaffMemberOut
    orphaned: list[AssignmentOut]


class OrphanedCase(BaseModel):
    case_id: uuid.UUID
    case_reference: str
    assignments: list[AssignmentOut] = Field(description="assignments held by deactivated staff")
    notices: list["NoticeOut"] = Field(default_factory=list,
                                       description="notices waiting in the agency's queue: the case has no case director")
    missing_owner: bool = Field(description="true when no active case director remains on the case")


class OrphanedList(Page):
    items: list[OrphanedCase]


# ---------------------------------------------------------------- timeline

class EventIn(_Request):
    kind: Literal[EVENT_KINDS]  # type: ignore[valid-type]
    visibility: Literal["victim", "internal"]
    occurred_at: Instant
    note: str | None = Field(default=None, max_length=5000, description="victim-visible events show it to the victim")


class EventOut(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    kind: str
    visibility: str
    occurred_at: datetime
    note: str | None
    detail: dict[str, Any]
    created_at: datetime
    created_by: str


class EventPage(Page):
    items: list[EventOut]


# ---------------------------------------------------------------- contact agreements

class AgreementIn(_Request):
    agency: Agency
    every_days: StrictInt | None = Field(default=None, ge=1, le=365, description="null: a one-off promise (\"we'll"
                                   " call you back by Friday\"), which ends when the contact is recorded")
    channel: Channel
    first_due_at: Instant | None = Field(default=None, description="default: now + every_days; required for a"
                                                                         " one-off promise")

    @model_validator(mode="after")
    def _when(self) -> "AgreementIn":
        if self.every_days is None and self.first_due_at is None:
            raise ValueError("first_due_at: a one-off promise (no every_days) needs the date it is due")
        return self


class AgreementOut(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    agency: str
    every_days: int | None
    channel: str
    next_due_at: datetime
    last_contact_at: datetime | None
    active: bool
    created_at: datetime


class AgreementList(BaseModel):
    items: list[AgreementOut]


class ContactIn(_Request):
    contacted_at: Instant
    channel: Channel | None = None
    note: str | None = Field(default=None, max_length=5000)


class OverdueItem(BaseModel):
    agreement_id: uuid.UUID
    case_id: uuid.UUID
    case_reference: str
    agency: str
    every_days: int | None
    channel: str
    next_due_at: datetime
    overdue_days: float


class OverdueGroup(BaseModel):
    staff_id: uuid.UUID | None = Field(description="null: the agency has no contact person on this case")
    staff_name: str | None
    items: list[OverdueItem]


class OverdueList(Page):
    items: list[OverdueGroup]


class NoticeOut(BaseModel):
    id: uuid.UUID
    kind: str
    case_id: uuid.UUID | None
    payload: dict[str, Any]
    created_at: datetime
    delivery: str = Field(description="pending (listed here only), enqueued (posted to the staff webhook), read")
    agency: str | None = Field(default=None, description="set for a notice in the agency's queue (no case director)")


class NoticeList(Page):
    items: list[NoticeOut]


# ---------------------------------------------------------------- order terms

class ExtensionIn(_Request):
    valid_until: Instant
    reference: str = Field(min_length=1, max_length=100, description="the decision that grants the extension")


class ExtensionOut(BaseModel):
    id: uuid.UUID
    order_id: uuid.UUID
    n: int
    previous_until: datetime
    valid_until: datetime
    reference: str
    created_at: datetime
    created_by: str


class ExtensionList(BaseModel):
    items: list[ExtensionOut]


class LetGoIn(_Request):
    reason: str = Field(min_length=3, max_length=2000, description="why the order is deliberately not extended")


# ---------------------------------------------------------------- risk

class RiskIn(_Request):
    level: Literal[RISK_LEVELS]  # type: ignore[valid-type]
    screened_on: date
    notes: str | None = Field(default=None, max_length=5000)


class ProposedProximity(BaseModel):
    warn_m: float
    alert_m: float


class RiskOut(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    level: str
    screened_on: date
    assessor_id: uuid.UUID
    assessor_name: str
    notes: str | None
    created_at: datetime
    proposed_proximity: ProposedProximity


class RiskList(BaseModel):
    items: list[RiskOut]


# ---------------------------------------------------------------- feasibility

class LatLon(_Request):
    lat: StrictFloat = Field(ge=-90, le=90, allow_inf_nan=False)
    lon: StrictFloat = Field(ge=-180, le=180, allow_inf_nan=False)


class Addresses(_Request):
    offender_home: LatLon | None = None
    offender_work: LatLon | None = None
    victim_home: LatLon | None = None
    victim_work: LatLon | None = None


class DraftProximity(_Request):
    """Looser than the stored rule: a draft may be wrong, that is what the check is for."""

    warn_m: StrictFloat = Field(gt=0, le=100_000)
    alert_m: StrictFloat = Field(gt=0, le=100_000)


class DraftZone(_Request):
    id: str | None = Field(default=None, max_length=100, description="your own label; stored zones use their id")
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["exclusion", "inclusion"]
    geometry: dict[str, Any]
    buffer_m: StrictFloat = Field(default=0, ge=0, le=20_000)
    schedule: dict[str, Any] | None = None


class DraftOrder(_Request):
    id: str | None = Field(default=None, max_length=100)
    kind: str = Field(min_length=1, max_length=50)
    valid_from: Instant
    valid_until: Instant | None = None


class FeasibilityDraft(_Request):
    addresses: Addresses = Field(default_factory=Addresses)
    proximity: DraftProximity | None = None
    zones: list[DraftZone] = Field(default_factory=list, max_length=200)
    orders: list[DraftOrder] = Field(default_factory=list, max_length=100)


class FeasibilityCaseRequest(_Request):
    """Checked together with what the case already holds: its addresses (overridden by ``addresses`` when sent),
    its proximity rule (overridden by ``proximity`` when sent), its stored zones and orders, plus the proposed
    ``zones`` and ``orders``."""

    addresses: Addresses | None = None
    proximity: DraftProximity | None = None
    zones: list[DraftZone] = Field(default_factory=list, max_length=200)
    orders: list[DraftOrder] = Field(default_factory=list, max_length=100)


class FindingOut(BaseModel):
    severity: Literal["blocking", "warning"]
    subject: str = Field(description="'proximity', 'zone:<id>' or 'order:<id>'")
    code: str
    explanation: str
    location: list[float] | None = Field(default=None, description="[lon, lat] of a geometry fault")


class FeasibilityOut(BaseModel):
    feasible: bool = Field(description="false when any finding is blocking")
    findings: list[FindingOut]


OrphanedCase.model_rebuild()
