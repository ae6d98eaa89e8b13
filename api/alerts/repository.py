"""All SQL of the alerts domain: the ONLY module that writes ``alerts`` and ``alert_changes``.

Every writer (the engine, panic, device events, operator actions) goes through :func:`append_change`, which
takes a transaction-scoped advisory lock before it assigns ``seq``. Transactions that write alert changes
therefore commit in ``seq`` order, so the WebSocket stream, which reads ``seq > after``, never skips a change
that commits late.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Iterable, Mapping, Sequence

import asyncpg

from api.platform.times import iso
from api.alerts import sources
from api.platform import metrics
from api.platform import pg_channels
from geofence.model import AlertChange
from notifications.outbox import Outbox, deliveries_for_alert

ALERT_LOG_LOCK = 0x616C_7274  # "alrt"
# What Outbox.enqueue_for_change needs of the alert, returned by the statement that stores the change.
_ENQUEUE_FACTS = "a.id, a.kind, a.case_id, a.status, a.max_level"


async def lock_alert_log(conn: asyncpg.Connection) -> None:
    """Take the alert-log lock (re-entrant within a transaction). Every writer takes it BEFORE it locks or
    updates an alert row, so all writers order their locks the same way and cannot deadlock."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", ALERT_LOG_LOCK)


async def append_change(
    conn: asyncpg.Connection,
    alert_id: uuid.UUID,
    change: str,
    *,
    outbox: Outbox,
    n: int | None = None,
    level: str,
    confidence: str,
    fix_at: datetime | None = None,
    actor: str | None = None,
    detail: dict[str, Any] | None = None,
    late: bool = False,
    level_possible: str | None = None,
    max_level_possible: str | None = None,
) -> int | None:
    """Record one change; returns its seq, or None when (alert_id, n) was already stored. Call in a transaction.

    ``late``, ``level_possible`` and ``max_level_possible`` are the engine's (geofence/RULES.md, R-CONF-2 and
    R-LATE-2); other writers leave them unset. ``outbox`` enqueues the notifications the change causes."""
    await lock_alert_log(conn)
    # One round trip: the change, the alert's seq, the wake-up, and the alert row the enqueue decides on.
    row = await conn.fetchrow(
        "WITH ins AS (INSERT INTO alert_changes (alert_id, n, change, level, confidence, fix_at, actor, detail, late,"
        " level_possible, max_level_possible)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (alert_id, n) DO NOTHING RETURNING seq),"
        f" upd AS (UPDATE alerts a SET seq = ins.seq FROM ins WHERE a.id = $1 RETURNING {_ENQUEUE_FACTS})"
        " SELECT ins.seq, upd.*, pg_notify($12, ins.seq::text) FROM ins LEFT JOIN upd ON true",
        alert_id, n, change, level, confidence, fix_at, actor, detail or {}, late, level_possible,
        max_level_possible, pg_channels.ALERT_CHANGES,
    )
    if row is None:
        return None
    # Notifications this change causes, in this same transaction (transactional outbox).
    await outbox.enqueue_for_change(conn, alert=row if row["id"] is not None else None, seq=row["seq"],
                                    change=change, level=level, confidence=confidence, actor=actor, detail=detail)
    return int(row["seq"])


async def append_changes(conn: asyncpg.Connection, changes: Sequence[Mapping[str, Any]], *,
                         outbox: Outbox) -> list[int]:
    """Record many changes that belong to no engine episode step (no ``n``), e.g. a batch of deliveries, in
    three round trips instead of four per change; returns their seqs in order. Each is stored as
    :func:`append_change` stores it (keys ``alert_id, change, level, confidence, actor, detail``) and enqueues
    what it causes. Call in a transaction."""
    if not changes:
        return []
    await lock_alert_log(conn)
    # Taken under the lock, so these seqs commit in order like append_change's.
    seqs = [r[0] for r in await conn.fetch(
        "SELECT nextval(pg_get_serial_sequence('alert_changes', 'seq')) FROM generate_series(1, $1)", len(changes))]
    ids = [c["alert_id"] for c in changes]
    alerts = {r["id"]: r for r in await conn.fetch(
        "WITH ins AS (INSERT INTO alert_changes (seq, alert_id, change, level, confidence, actor, detail)"
        " SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],"
        " $7::jsonb[])),"
        " upd AS (UPDATE alerts a SET seq = m.seq FROM (SELECT id, max(seq) AS seq FROM unnest($2, $1) AS u(id, seq)"
        f" GROUP BY id) m WHERE a.id = m.id RETURNING {_ENQUEUE_FACTS}),"
        " wake AS (SELECT pg_notify($8, $9))"
        " SELECT upd.* FROM upd, wake",
        seqs, ids, [c["change"] for c in changes], [c["level"] for c in changes],
        [c["confidence"] for c in changes], [c.get("actor") for c in changes],
        [c.get("detail") or {} for c in changes], pg_channels.ALERT_CHANGES, str(seqs[-1]),
    )}
    for seq, c in zip(seqs, changes):
        await outbox.enqueue_for_change(conn, alert=alerts.get(c["alert_id"]), seq=seq, change=c["change"],
                                        level=c["level"], confidence=c["confidence"], actor=c.get("actor"),
                                        detail=c.get("detail"))
    return seqs


async def open_alert(
    conn: asyncpg.Connection,
    *,
    outbox: Outbox,
    alert_id: uuid.UUID,
    case_id: uuid.UUID | None,
    kind: str,
    level: str,
    confidence: str,
    opened_at: datetime,
    subject_id: str | None = None,
    zone_id: uuid.UUID | None = None,
    device_id: uuid.UUID | None = None,
    late: bool = False,
    detail: dict[str, Any] | None = None,
    actor: str | None = None,
) -> bool:
    """Create an alert with its ``opened`` change; False if it existed already (idempotent)."""
    sources.check_kind(kind)
    inserted = await conn.fetchval(
        "INSERT INTO alerts (id, case_id, kind, subject_id, zone_id, device_id, level, max_level, confidence,"
        " opened_at, late, detail) VALUES ($1,$2,$3,$4,$5,$6,$7,$7,$8,$9,$10,$11)"
        " ON CONFLICT (id) DO NOTHING RETURNING true",
        alert_id, case_id, kind, subject_id, zone_id, device_id, level, confidence, opened_at, late, detail or {},
    )
    if not inserted:
        return False
    await append_change(
        conn, alert_id, "opened", outbox=outbox, n=1 if actor is None else None, level=level,
        confidence=confidence, fix_at=opened_at, actor=actor,
    )
    metrics.ALERTS.labels(kind, level, "opened").inc()
    return True


def _as_uuid(value: str | None) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _engine_detail(c: AlertChange) -> dict[str, Any]:
    """What the operator needs to judge this step: the distance then, why it cleared, the proving fixes."""
    detail: dict[str, Any] = {"late": c.late, "evidence": list(c.evidence[-3:])}
    if c.min_distance_m is not None:
        detail["min_distance_m"] = round(c.min_distance_m, 1)
    if c.reason:
        detail["reason"] = c.reason
    if c.near_victim is not None:
        detail["near_victim"] = c.near_victim
    detail["trigger"] = c.trigger
    if c.rssi is not None:
        detail["rssi"] = c.rssi
    if c.approach is not None:
        detail["closing_speed_mps"] = round(c.approach.closing_speed_mps, 1)
        detail["eta_contact_s"] = round(c.approach.eta_contact_s)
        detail["eta_uncertainty_s"] = round(c.approach.eta_uncertainty_s)
    return detail


async def apply_engine_changes(conn: asyncpg.Connection, changes: Iterable[AlertChange], *, outbox: Outbox,
                               hold_silences: bool = False) -> int:
    """Store the engine's decisions. Idempotent: replaying the same changes stores nothing new.

    With ``hold_silences`` (the outage grouping runs, api/alerts/outage.py) a tag's silence that may belong to a
    supplier outage is stored held, in one statement and without the alert-log lock: no seq, no change, nothing
    on the stream until the grouping releases it or folds it into an outage. A silence near the victim (R-TICK-5),
    of a tag with an open tamper alert, or of a device without a supplier is never held. Changes of silences
    already folded into an outage are written in one batch and notify no one."""
    changes = list(changes)
    if hold_silences:
        changes = await _hold(conn, changes)
    rest = await _quiet_changes(conn, changes, outbox)
    stored = 0
    for c in rest:
        alert_id = uuid.UUID(c.episode_id)
        if c.change.value == "opened":
            zone_id = _as_uuid(c.zone_id)
            device_id = _as_uuid(c.subject_id) if c.kind.value.endswith("_silent") else None
            # A silence names its tag's supplier: every silent tag counts towards an outage (api/alerts/outage.py).
            await conn.execute(
                "INSERT INTO alerts (id, case_id, kind, subject_id, zone_id, device_id, level, max_level,"
                " confidence, opened_at, late, min_distance_m, evidence, max_level_possible, detail, supplier_id)"
                " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,"
                " (SELECT supplier_id FROM devices WHERE id = $6)) ON CONFLICT (id) DO NOTHING",
                alert_id, uuid.UUID(c.case_id), c.kind.value, c.subject_id, zone_id, device_id, c.level.label,
                c.max_level.label, c.confidence.label, c.opened_at, c.late, c.min_distance_m, list(c.evidence),
                c.max_level_possible.label, {} if c.near_victim is None else {"near_victim": c.near_victim},
            )
        seq = await append_change(
            conn, alert_id, c.change.value, outbox=outbox, n=c.n, level=c.level.label,
            confidence=c.confidence.label, fix_at=c.fix_at, detail=_engine_detail(c), late=c.late,
            level_possible=c.level_possible.label, max_level_possible=c.max_level_possible.label,
        )
        if seq is None:
            continue
        stored += 1
        metrics.ALERTS.labels(c.kind.value, c.level.label, c.change.value).inc()
        if c.change.value == "cleared":
            await conn.execute(
                "UPDATE alerts SET cleared_at = $2, clear_reason = $3, min_distance_m = $4 WHERE id = $1",
                alert_id, c.fix_at, c.reason, c.min_distance_m,
            )
        elif c.change.value != "opened":
            # A late finding says what was found at its fix time (R-LATE-2): on an alert raised from live data
            # only the maxima, the distance and late_fix_at move, level and confidence stay with the live
            # readings, and a cleared alert stays cleared. A late episode follows its late readings.
            late_found = c.late and c.change.value == "escalated"
            await conn.execute(
                "UPDATE alerts SET level = CASE WHEN $8 AND NOT late THEN level ELSE $2 END, max_level = $3,"
                " confidence = CASE WHEN $8 AND NOT late THEN confidence ELSE $4 END, min_distance_m = $5,"
                " evidence = $6, max_level_possible = $7,"
                " late_fix_at = CASE WHEN $8 THEN GREATEST(late_fix_at, $9) ELSE late_fix_at END WHERE id = $1",
                alert_id, c.level.label, c.max_level.label, c.confidence.label, c.min_distance_m, list(c.evidence),
                c.max_level_possible.label, late_found, c.fix_at,
            )
    return stored




def _silence_may_wait(c: AlertChange) -> bool:
    return c.change.value == "opened" and c.kind.value == "offender_silent" and c.near_victim is False


async def _hold(conn: asyncpg.Connection, changes: list[AlertChange]) -> list[AlertChange]:
    """Store the silences that may belong to an outage as held alerts; return the other changes."""
    waiting = [c for c in changes if _silence_may_wait(c)]
    if not waiting:
        return changes
    suppliers = {r["id"]: r["supplier_id"] for r in await conn.fetch(
        "SELECT d.id, d.supplier_id FROM devices d WHERE d.id = ANY($1::uuid[]) AND d.supplier_id IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM alerts t WHERE t.device_id = d.id AND t.kind = 'device_event'"
        "  AND t.status <> 'resolved' AND t.detail->>'family' = 'tamper')",
        [_as_uuid(c.subject_id) for c in waiting])}
    held = [c for c in waiting if _as_uuid(c.subject_id) in suppliers]
    if not held:
        return changes
    await conn.execute(
        "INSERT INTO alerts (id, case_id, kind, subject_id, device_id, supplier_id, level, max_level, confidence,"
        " opened_at, max_level_possible, detail, held_since)"
        " SELECT x.id, x.case_id, 'offender_silent', x.device::text, x.device, x.supplier, x.level, x.level,"
        " x.confidence, x.opened_at, x.level, '{\"near_victim\": false}', now()"
        " FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::timestamptz[])"
        " AS x(id, case_id, device, supplier, level, confidence, opened_at) ON CONFLICT (id) DO NOTHING",
        [uuid.UUID(c.episode_id) for c in held], [uuid.UUID(c.case_id) for c in held],
        [_as_uuid(c.subject_id) for c in held], [suppliers[_as_uuid(c.subject_id)] for c in held],
        [c.level.label for c in held], [c.confidence.label for c in held], [c.fix_at for c in held],
    )
    ids = {c.episode_id for c in held}
    return [c for c in changes if c.episode_id not in ids or c.change.value != "opened"]


async def _quiet_changes(conn: asyncpg.Connection, changes: list[AlertChange], outbox: Outbox) -> list[AlertChange]:
    """Write the changes of held and grouped silences; return the others. A held silence that changes before the
    grouping decided (its tag came back) is released first: it was not part of an outage."""
    ids = [uuid.UUID(c.episode_id) for c in changes if c.kind.value == "offender_silent"]
    if not ids:
        return changes
    quiet = {r["id"]: r["group_id"] for r in await conn.fetch(
        "SELECT id, group_id FROM alerts WHERE id = ANY($1::uuid[]) AND (held_since IS NOT NULL OR group_id IS NOT NULL)",
        ids)}
    if not quiet:
        return changes
    held = [i for i, group in quiet.items() if group is None]
    if held:
        await release_held(conn, held, outbox=outbox)
    grouped = [c for c in changes if quiet.get(uuid.UUID(c.episode_id)) is not None and c.change.value != "opened"]
    if grouped:
        await lock_alert_log(conn)
        await _append_grouped(conn, grouped)
    # A held or grouped silence's opened change is stored already (held, or written on release or grouping);
    # the later changes of a grouped one were written above; those of a released one go the ordinary way.
    return [c for c in changes if uuid.UUID(c.episode_id) not in quiet
            or (c.change.value != "opened" and quiet[uuid.UUID(c.episode_id)] is None)]


async def _append_grouped(conn: asyncpg.Connection, changes: list[AlertChange]) -> None:
    """The changes of silences folded into an outage, in one statement; the caller holds the alert-log lock. They
    notify no one: the outage alert speaks for them."""
    rows = await conn.fetch(
        "INSERT INTO alert_changes (alert_id, n, change, level, confidence, fix_at, detail, late, level_possible,"
        " max_level_possible)"
        " SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],"
        " $7::jsonb[], $8::bool[], $9::text[], $10::text[])"
        " ON CONFLICT (alert_id, n) DO NOTHING RETURNING alert_id, seq",
        [uuid.UUID(c.episode_id) for c in changes], [c.n for c in changes], [c.change.value for c in changes],
        [c.level.label for c in changes], [c.confidence.label for c in changes], [c.fix_at for c in changes],
        [_engine_detail(c) for c in changes], [c.late for c in changes], [c.level_possible.label for c in changes],
        [c.max_level_possible.label for c in changes],
    )
    if not rows:
        return
    cleared = {uuid.UUID(c.episode_id): c for c in changes if c.change.value == "cleared"}
    ends = [cleared.get(r["alert_id"]) for r in rows]
    await conn.execute(
        "UPDATE alerts a SET seq = x.seq, cleared_at = COALESCE(x.cleared_at, a.cleared_at),"
        " clear_reason = COALESCE(x.reason, a.clear_reason)"
        " FROM unnest($1::uuid[], $2::bigint[], $3::timestamptz[], $4::text[]) AS x(id, seq, cleared_at, reason)"
        " WHERE a.id = x.id",
        [r["alert_id"] for r in rows], [r["seq"] for r in rows], [e.fix_at if e else None for e in ends],
        [e.reason if e else None for e in ends],
    )
    await conn.execute("SELECT pg_notify($1, $2)", pg_channels.ALERT_CHANGES, str(max(r["seq"] for r in rows)))
    for c in changes:
        metrics.ALERTS.labels(c.kind.value, c.level.label, c.change.value).inc()


_HELD_OPENED_DETAIL = {"late": False, "evidence": [], "near_victim": False}


async def release_held(conn: asyncpg.Connection, alert_ids: list[uuid.UUID], *, outbox: Outbox) -> list[uuid.UUID]:
    """Held silences become ordinary alerts: their opened change is written now, as the engine made it, and
    notifies as any silence does. Returns the ids released (those still held)."""
    rows = await conn.fetch(
        "UPDATE alerts SET held_since = NULL WHERE id = ANY($1::uuid[]) AND held_since IS NOT NULL"
        " RETURNING id, level, confidence, opened_at, held_since", alert_ids)
    for r in sorted(rows, key=lambda r: r["opened_at"]):
        await append_change(conn, r["id"], "opened", outbox=outbox, n=1, level=r["level"],
                            confidence=r["confidence"], fix_at=r["opened_at"], detail=_HELD_OPENED_DETAIL,
                            level_possible=r["level"], max_level_possible=r["level"])
        metrics.ALERTS.labels("offender_silent", r["level"], "opened").inc()
    return [r["id"] for r in rows]


async def group_held(conn: asyncpg.Connection, outage_id: uuid.UUID, alert_ids: list[uuid.UUID]) -> int:
    """Fold held silences into the outage: their opened changes in one statement, linked by ``group_id``; they
    notify no one. Returns how many were folded."""
    await lock_alert_log(conn)
    rows = await conn.fetch(
        "INSERT INTO alert_changes (alert_id, n, change, level, confidence, fix_at, detail, level_possible,"
        " max_level_possible)"
        " SELECT a.id, 1, 'opened', a.level, a.confidence, a.opened_at,"
        " $3::jsonb || jsonb_build_object('group_id', $1::uuid::text), a.level, a.level"
        " FROM alerts a WHERE a.id = ANY($2::uuid[]) AND a.held_since IS NOT NULL ORDER BY a.opened_at, a.id"
        " ON CONFLICT (alert_id, n) DO NOTHING RETURNING alert_id, seq",
        outage_id, alert_ids, _HELD_OPENED_DETAIL,
    )
    if not rows:
        return 0
    await conn.execute(
        "UPDATE alerts a SET held_since = NULL, group_id = $1, seq = x.seq"
        " FROM unnest($2::uuid[], $3::bigint[]) AS x(id, seq) WHERE a.id = x.id",
        outage_id, [r["alert_id"] for r in rows], [r["seq"] for r in rows])
    await conn.execute("SELECT pg_notify($1, $2)", pg_channels.ALERT_CHANGES, str(max(r["seq"] for r in rows)))
    metrics.ALERTS.labels("offender_silent", "violation", "opened").inc(len(rows))
    return len(rows)


# ---------------------------------------------------------------- supplier outages (api/alerts/outage.py)

async def held_by_supplier(conn: asyncpg.Connection, window_s: float, hold_s: float) -> list[asyncpg.Record]:
    """Per supplier with held silences: their ids (``ids``) and those held ``hold_s`` or longer (``due``), the
    tags of the supplier whose silence was raised within the window and has not cleared (``silent``), its
    active tags (``active``) and its open outage (``outage``, or null)."""
    return await conn.fetch(
        "WITH held AS (SELECT supplier_id, array_agg(id ORDER BY opened_at, id) AS ids,"
        "  array_agg(id ORDER BY opened_at, id) FILTER (WHERE held_since <= now() - make_interval(secs => $2)) AS due"
        "  FROM alerts WHERE held_since IS NOT NULL GROUP BY supplier_id)"
        " SELECT h.supplier_id, h.ids, COALESCE(h.due, '{}') AS due,"
        " (SELECT count(DISTINCT s.device_id) FROM alerts s WHERE s.kind = 'offender_silent'"
        "   AND s.supplier_id = h.supplier_id AND s.cleared_at IS NULL"
        "   AND s.raised_at > now() - make_interval(secs => $1)) AS silent,"
        " (SELECT count(*) FROM devices d JOIN cases c ON c.id = d.case_id WHERE d.supplier_id = h.supplier_id"
        "   AND d.role = 'offender_tag' AND d.revoked_at IS NULL AND c.status = 'active') AS active,"
        " (SELECT o.id FROM alerts o WHERE o.kind = 'supplier_outage' AND o.supplier_id = h.supplier_id"
        "   AND o.cleared_at IS NULL) AS outage"
        " FROM held h",
        window_s, hold_s,
    )


async def open_outage(conn: asyncpg.Connection, *, outbox: Outbox, outage_id: uuid.UUID,
                      supplier_id: uuid.UUID) -> bool:
    """The supplier's outage alert (no case: its detail lists them); False if it exists already."""
    name = await conn.fetchval("SELECT name FROM suppliers WHERE id = $1", supplier_id)
    opened = await open_alert(conn, outbox=outbox, alert_id=outage_id, case_id=None, kind="supplier_outage",
                              level="violation", confidence="confirmed", opened_at=outbox.now(),
                              subject_id=str(supplier_id), detail={"supplier": name, "devices": 0, "cases": []})
    if opened:
        await conn.execute("UPDATE alerts SET supplier_id = $2 WHERE id = $1", outage_id, supplier_id)
    return opened


async def describe_outage(conn: asyncpg.Connection, outage_id: uuid.UUID) -> dict[str, Any]:
    """Refresh the outage's detail from its silences: how many tags, how many still silent, the cases."""
    row = await conn.fetchrow(
        "SELECT count(*) AS devices, count(*) FILTER (WHERE s.cleared_at IS NULL) AS silent,"
        " COALESCE(jsonb_agg(DISTINCT jsonb_build_object('case_id', c.id, 'case_reference', c.reference))"
        "  FILTER (WHERE s.cleared_at IS NULL), '[]') AS cases"
        " FROM alerts s JOIN cases c ON c.id = s.case_id WHERE s.group_id = $1", outage_id)
    detail = {"devices": row["devices"], "silent": row["silent"], "cases": row["cases"]}
    await conn.execute("UPDATE alerts SET detail = detail || $2::jsonb WHERE id = $1", outage_id, detail)
    return detail


async def open_outages(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Open outages: how long they have lasted (server time), and whether any silence is still open or held."""
    return await conn.fetch(
        "SELECT o.id, o.supplier_id, EXTRACT(EPOCH FROM now() - o.raised_at)::float8 AS age_s,"
        " EXISTS (SELECT 1 FROM alerts s WHERE s.group_id = o.id AND s.cleared_at IS NULL)"
        "  OR EXISTS (SELECT 1 FROM alerts h WHERE h.supplier_id = o.supplier_id AND h.held_since IS NOT NULL) AS silent"
        " FROM alerts o WHERE o.kind = 'supplier_outage' AND o.cleared_at IS NULL")


async def clear_outage(conn: asyncpg.Connection, outage_id: uuid.UUID, *, outbox: Outbox) -> None:
    """Every tag of the outage reports again: the outage alert clears."""
    seq = await append_change(conn, outage_id, "cleared", outbox=outbox, n=None, level="violation",
                              confidence="confirmed", fix_at=outbox.now(), detail={"reason": "fixes_resumed"})
    if seq is not None:
        await conn.execute("UPDATE alerts SET cleared_at = $2, clear_reason = 'fixes_resumed' WHERE id = $1",
                           outage_id, outbox.now())


async def cases_to_tell(conn: asyncpg.Connection, outage_id: uuid.UUID, limit: int) -> list[asyncpg.Record]:
    """Cases with a victim whose tag is still silent in the outage and who has not been told (``resumed``
    false), or who was told and whose tag reports again (``resumed`` true)."""
    return await conn.fetch(
        "SELECT DISTINCT s.case_id, s.cleared_at IS NOT NULL AS resumed FROM alerts s"
        " WHERE s.group_id = $1 AND EXISTS (SELECT 1 FROM parties p WHERE p.case_id = s.case_id AND p.role = 'victim')"
        " AND ((s.cleared_at IS NULL AND NOT s.detail ? 'victim_told')"
        "  OR (s.cleared_at IS NOT NULL AND s.detail ? 'victim_told' AND NOT s.detail ? 'victim_told_resumed'))"
        " LIMIT $2", outage_id, limit)


async def mark_told(conn: asyncpg.Connection, outage_id: uuid.UUID, case_ids: list[uuid.UUID], resumed: bool) -> None:
    await conn.execute("UPDATE alerts SET detail = detail || jsonb_build_object($3::text, true)"
                       " WHERE group_id = $1 AND case_id = ANY($2::uuid[])",
                       outage_id, case_ids, "victim_told_resumed" if resumed else "victim_told")


async def lock_for_action(conn: asyncpg.Connection, alert_id: uuid.UUID) -> asyncpg.Record | None:
    """The alert-log lock, then the alert's row (status, level, confidence, case_id) locked for an operator
    action; None when there is no such alert."""
    await lock_alert_log(conn)
    return await conn.fetchrow(
        "SELECT status, level, confidence, case_id FROM alerts WHERE id = $1 FOR UPDATE", alert_id)


async def set_status(conn: asyncpg.Connection, alert_id: uuid.UUID, status: str, outcome: str | None) -> None:
    await conn.execute("UPDATE alerts SET status = $2, outcome = COALESCE($3, outcome) WHERE id = $1",
                       alert_id, status, outcome)


async def raise_level(conn: asyncpg.Connection, alert_id: uuid.UUID, level: str) -> None:
    """A device event escalated an open alert of its family (the caller holds the alert-log lock)."""
    await conn.execute("UPDATE alerts SET level = $2, max_level = $2 WHERE id = $1", alert_id, level)


async def mark_cleared(conn: asyncpg.Connection, alert_id: uuid.UUID, at: datetime, reason: str) -> None:
    """The condition behind an adapter's alert is over (the caller holds the alert-log lock)."""
    await conn.execute("UPDATE alerts SET cleared_at = $2, clear_reason = $3 WHERE id = $1", alert_id, at, reason)


async def has_change(conn: asyncpg.Connection, alert_id: uuid.UUID, change: str) -> bool:
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM alert_changes WHERE alert_id = $1 AND change = $2)", alert_id, change)


async def case_has_victim(conn: asyncpg.Connection, case_id: uuid.UUID) -> bool:
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM parties WHERE case_id = $1 AND role = 'victim')", case_id)


async def case_exists(conn: asyncpg.Connection | asyncpg.Pool, case_id: uuid.UUID) -> bool:
    return await conn.fetchval("SELECT EXISTS (SELECT 1 FROM cases WHERE id = $1)", case_id)


async def notification_policy(conn: asyncpg.Connection | asyncpg.Pool,
                              case_id: uuid.UUID) -> tuple[asyncpg.Record | None, asyncpg.Record | None]:
    """The case's stored overrides and SMS number, and the victim's own preferences (either may be absent)."""
    row = await conn.fetchrow("SELECT victim_phone, policy FROM notification_policies WHERE case_id = $1", case_id)
    prefs = await conn.fetchrow("SELECT channel, quiet_start, quiet_end, update_frequency"
                                " FROM victim_preferences WHERE case_id = $1", case_id)
    return row, prefs


async def put_notification_policy(conn: asyncpg.Connection, case_id: uuid.UUID, victim_phone: str | None,
                                  policy: dict[str, Any], actor: str) -> None:
    await conn.execute(
        "INSERT INTO notification_policies (case_id, victim_phone, policy, updated_by) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (case_id) DO UPDATE SET victim_phone = EXCLUDED.victim_phone, policy = EXCLUDED.policy,"
        " updated_at = now(), updated_by = EXCLUDED.updated_by",
        case_id, victim_phone, policy, actor,
    )


_ALERT_COLUMNS = (
    "a.id, a.case_id, c.reference AS case_reference, a.kind, a.subject_id, a.zone_id, a.device_id, a.level,"
    " a.max_level, a.confidence, a.status, a.opened_at, a.cleared_at, a.clear_reason, a.raised_at,"
    " a.min_distance_m, a.late, a.evidence, a.detail, a.outcome, a.seq, a.max_level_possible, a.late_fix_at,"
    " a.group_id"
)


def alert_json(row: asyncpg.Record, changes: list[asyncpg.Record] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(row["id"]),
        "case_id": str(row["case_id"]) if row["case_id"] else None,  # None: a supplier outage (no case)
        "case_reference": row["case_reference"],
        "kind": row["kind"],
        "zone_id": str(row["zone_id"]) if row["zone_id"] else None,
        "device_id": str(row["device_id"]) if row["device_id"] else None,
        "level": row["level"],
        "max_level": row["max_level"],
        "max_level_possible": row["max_level_possible"] or row["max_level"],
        "confidence": row["confidence"],
        "status": row["status"],
        "opened_at": iso(row["opened_at"]),
        "cleared_at": iso(row["cleared_at"]),
        "clear_reason": row["clear_reason"],
        "raised_at": iso(row["raised_at"]),
        "min_distance_m": row["min_distance_m"],
        "late": row["late"],
        "late_fix_at": iso(row["late_fix_at"]),
        "evidence": row["evidence"],
        "detail": row["detail"],
        # A panic whose recorded_at was implausible, raised at server time instead (api/victim/endpoints.py).
        "clock_suspect": (row["detail"] or {}).get("clock_suspect") is True,
        # A silence: whether the device went dark near the victim (geofence/RULES.md, R-TICK-5, R-TICK-6).
        "near_victim": (row["detail"] or {}).get("near_victim") if row["kind"].endswith("_silent") else None,
        "outcome": row["outcome"],
        "seq": row["seq"],
        "group_id": str(row["group_id"]) if row["group_id"] else None,  # the supplier outage it is folded into
    }
    if changes is not None:
        out["changes"] = [change_json(ch) for ch in changes]
    return out


def change_json(ch: asyncpg.Record) -> dict[str, Any]:
    return {
        "seq": ch["seq"],
        "change": ch["change"],
        "level": ch["level"],
        "confidence": ch["confidence"],
        "at": iso(ch["at"]),
        "fix_at": iso(ch["fix_at"]),
        "late": ch["late"],
        "level_possible": ch["level_possible"] or ch["level"],
        "max_level_possible": ch["max_level_possible"],
        "actor": ch["actor"],
        "detail": ch["detail"],
        # An engine change: what moved it, and for proximity the time to contact when a closing speed is known.
        "trigger": (ch["detail"] or {}).get("trigger"),
        "eta_contact_s": (ch["detail"] or {}).get("eta_contact_s"),
    }


async def fetch_alert(conn: asyncpg.Connection | asyncpg.Pool, alert_id: uuid.UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(f"SELECT {_ALERT_COLUMNS} FROM alerts a LEFT JOIN cases c ON c.id = a.case_id WHERE a.id = $1", alert_id)
    if row is None:
        return None
    changes = await conn.fetch(
        "SELECT seq, change, level, confidence, at, fix_at, actor, detail, late, level_possible, max_level_possible"
        " FROM alert_changes WHERE alert_id = $1 ORDER BY seq",
        alert_id,
    )
    out = alert_json(row, changes)
    out["deliveries"] = await deliveries_for_alert(conn, alert_id)
    return out


async def list_alerts(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    status: str | None,
    case_id: uuid.UUID | None,
    case_ids: list[uuid.UUID] | None = None,
    after_seq: int | None,
    limit: int,
    group_id: uuid.UUID | None = None,
    outages: bool = False,
) -> list[dict[str, Any]]:
    """Newest change first; the cursor is the ``seq`` of the last alert of the previous page.

    The queue leaves out silences held for the outage decision and, unless one case is asked for, those folded
    into an outage; ``group_id`` lists the silences of that outage instead. Outage alerts (no case) are listed when ``outages``."""
    rows = await conn.fetch(
        f"SELECT {_ALERT_COLUMNS} FROM alerts a LEFT JOIN cases c ON c.id = a.case_id"
        " WHERE ($1::text IS NULL OR a.status = $1) AND ($2::uuid IS NULL OR a.case_id = $2)"
        " AND ($3::uuid[] IS NULL OR a.case_id = ANY($3) OR (a.case_id IS NULL AND $7))"
        " AND ($4::bigint IS NULL OR a.seq < $4) AND a.held_since IS NULL"
        " AND (a.group_id IS NOT DISTINCT FROM $6 OR ($2::uuid IS NOT NULL AND $6::uuid IS NULL))"
        " AND (a.case_id IS NOT NULL OR $7)"
        " ORDER BY a.seq DESC LIMIT $5",
        status, case_id, case_ids, after_seq, limit, group_id, outages,
    )
    return [alert_json(r) for r in rows]


async def changes_after(conn: asyncpg.Connection | asyncpg.Pool, after: int, limit: int = 500) -> list[dict[str, Any]]:
    """Stream items ``{seq, change, alert}`` for every change after ``after``, oldest first."""
    rows = await conn.fetch(
        "SELECT seq, alert_id, change, level, confidence, at, fix_at, actor, detail, late, level_possible,"
        " max_level_possible FROM alert_changes WHERE seq > $1 ORDER BY seq LIMIT $2",
        after, limit,
    )
    if not rows:
        return []
    ids = list({r["alert_id"] for r in rows})
    alerts = {
        r["id"]: alert_json(r)
        for r in await conn.fetch(
            f"SELECT {_ALERT_COLUMNS} FROM alerts a LEFT JOIN cases c ON c.id = a.case_id WHERE a.id = ANY($1)", ids
        )
    }
    return [{"seq": r["seq"], "change": change_json(r), "alert": alerts[r["alert_id"]]} for r in rows]


# ---------------------------------------------------------------- the monitoring room's load (counts only)

# What caused an alert, for grouping a flood: a device event by its event type, anything else by its kind.
_CAUSE = "CASE WHEN a.kind = 'device_event' THEN 'device_event:' || coalesce(a.detail->>'event', 'other') ELSE a.kind END"
# Silences held for the outage decision or folded into an outage count once, as that outage.
_COUNTED = "a.held_since IS NULL AND a.group_id IS NULL"


async def alerts_per_hour(conn: asyncpg.Connection, now: datetime, hours: int) -> list[asyncpg.Record]:
    """Alerts raised in each of the last ``hours`` whole hours up to ``now`` (the last one running), oldest first."""
    return await conn.fetch(
        "SELECT h.start, count(a.id) AS alerts, count(a.id) FILTER (WHERE a.max_level = 'violation') AS violations"
        " FROM generate_series(date_trunc('hour', $1::timestamptz) - make_interval(hours => $2 - 1),"
        "                      date_trunc('hour', $1::timestamptz), interval '1 hour') AS h(start)"
        f" LEFT JOIN alerts a ON a.raised_at >= h.start AND a.raised_at < h.start + interval '1 hour' AND {_COUNTED}"
        " GROUP BY h.start ORDER BY h.start", now, hours)


async def open_unacknowledged(conn: asyncpg.Connection, now: datetime, deadline_s: float) -> list[asyncpg.Record]:
    """Open alerts by cause: how many, and how many have waited longer than the deadline."""
    return await conn.fetch(
        f"SELECT {_CAUSE} AS cause, count(*) AS open,"
        " count(*) FILTER (WHERE a.raised_at < $1::timestamptz - make_interval(secs => $2::float8)) AS overdue"
        f" FROM alerts a WHERE a.status = 'open' AND {_COUNTED} GROUP BY 1 ORDER BY 3 DESC, 2 DESC, 1", now, deadline_s)


async def acknowledgements_by_operator(conn: asyncpg.Connection, now: datetime, since_s: float,
                                       deadline_s: float) -> list[asyncpg.Record]:
    """Per operator, the alerts they acknowledged since ``since_s`` ago: how many, how many past the deadline, and
    the median wait from raised to acknowledged."""
    return await conn.fetch(
        "SELECT ch.actor, count(*) AS acknowledged,"
        " count(*) FILTER (WHERE ch.at - a.raised_at > make_interval(secs => $3::float8)) AS late,"
        " percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM ch.at - a.raised_at)) AS median_s"
        " FROM alert_changes ch JOIN alerts a ON a.id = ch.alert_id"
        " WHERE ch.change = 'acknowledged' AND ch.at > $1::timestamptz - make_interval(secs => $2::float8)"
        " AND ch.actor IS NOT NULL"
        " GROUP BY ch.actor ORDER BY 3 DESC, 2 DESC, 1", now, since_s, deadline_s)


async def recent_by_cause(conn: asyncpg.Connection, now: datetime, window_s: float) -> list[asyncpg.Record]:
    """Alerts raised in the last ``window_s`` by cause, most first: what a flood is made of."""
    return await conn.fetch(
        f"SELECT {_CAUSE} AS cause, count(*) AS alerts,"
        " count(*) FILTER (WHERE a.max_level = 'violation') AS violations"
        f" FROM alerts a WHERE a.raised_at > $1::timestamptz - make_interval(secs => $2::float8) AND {_COUNTED}"
        " GROUP BY 1 ORDER BY 2 DESC, 1", now, window_s)
