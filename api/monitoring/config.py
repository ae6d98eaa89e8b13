"""Builds ``geofence`` configuration from what the database holds of each case (read by the repository)."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import asyncpg

from api.cases.zones.geometry import parse_geometry, parse_schedule
from api.monitoring import repository
from api.monitoring.repository import CaseRows
from geofence.model import CaseConfig, ExclusionZone, InclusionZone, ProximityRule, Validity, Zone

# Orders that can carry a contact ban (contactverbod): the proximity rule is in force while one of them is.
CONTACT_BAN_KINDS = ("contact_ban", "behavioural_order", "protection_order", "special_conditions")
_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)


def proximity_rule_id(case_id: uuid.UUID) -> str:
    return str(uuid.uuid5(case_id, "proximity"))


def _proximity(case: asyncpg.Record, orders: list[asyncpg.Record]) -> ProximityRule | None:
    if case["warn_m"] is None:
        return None
    bans = [o for o in orders if o["kind"] in CONTACT_BAN_KINDS]
    if bans:
        until = None if any(o["valid_until"] is None for o in bans) else max(o["valid_until"] for o in bans)
        validity = Validity(str(bans[-1]["id"]), min(o["valid_from"] for o in bans), until)
    else:
        # Staff set distances on the case without an order yet: enforce rather than silently not protect.
        validity = Validity("case", _EPOCH, None)
    return ProximityRule(proximity_rule_id(case["id"]), case["warn_m"], case["alert_m"], validity)


def _zone(z: asyncpg.Record, orders: dict[uuid.UUID, asyncpg.Record]) -> Zone:
    order = orders[z["order_id"]]
    validity = Validity(str(order["id"]), order["valid_from"], order["valid_until"])
    geometry = parse_geometry(z["geometry"])
    schedule = parse_schedule(z["schedule"])
    if z["kind"] == "inclusion":
        return InclusionZone(str(z["id"]), geometry, schedule, validity)
    return ExclusionZone(str(z["id"]), geometry, z["buffer_m"], validity, schedule)


async def load_cases(conn: repository.Db, case_ids: list[uuid.UUID] | None = None,
                     partition: tuple[int, int] | None = None) -> list[CaseConfig]:
    """The configuration of the active cases among ``case_ids`` (``None``: all), in ``partition`` if given."""
    return build_configs(await repository.case_rows(conn, case_ids, partition))


def build_configs(rows: CaseRows) -> list[CaseConfig]:
    cases, orders, zones, devices = rows
    ids = [c["id"] for c in cases]
    by_case_orders: dict[uuid.UUID, list[asyncpg.Record]] = {i: [] for i in ids}
    for o in orders:
        by_case_orders[o["case_id"]].append(o)
    order_by_id = {o["id"]: o for o in orders}
    configs = []
    for c in cases:
        cid = c["id"]
        configs.append(
            CaseConfig(
                case_id=str(cid),
                offender_devices=frozenset(str(d["id"]) for d in devices if d["case_id"] == cid and d["role"] == "offender_tag"),
                victim_devices=frozenset(str(d["id"]) for d in devices if d["case_id"] == cid and d["role"] == "victim_app"),
                proximity=_proximity(c, by_case_orders[cid]),
                zones=tuple(_zone(z, order_by_id) for z in zones if z["case_id"] == cid),
            )
        )
    return configs
