"""The audit log: who did or read what, on which case, and why. Append-only and hash-chained (see
migrations/0003_audit_chain.sql); this module writes records and verifies the chain."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg


async def record(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    actor: str,
    role: str,
    action: str,
    case_id: uuid.UUID | None = None,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO audit_log (actor, role, action, case_id, reason, detail) VALUES ($1, $2, $3, $4, $5, $6)",
        actor, role, action, case_id, reason, detail or {},
    )


@dataclass(frozen=True)
class ChainReport:
    records: int
    faults: list[str]

    @property
    def intact(self) -> bool:
        return not self.faults


async def verify_chain(conn: asyncpg.Connection) -> ChainReport:
    """Recompute every hash in chain order; report the first record where content, link or order breaks."""
    faults: list[str] = []
    expected_prev = "genesis"
    expected_seq = 1
    count = 0
    # The canonical text comes from the same SQL function the trigger used, so both sides agree byte for byte.
    async with conn.transaction():
        async for row in conn.cursor(
            "SELECT chain_seq, prev_hash, hash, audit_log_canonical(a) AS canonical FROM audit_log a ORDER BY chain_seq"
        ):
            count += 1
            seq = row["chain_seq"]
            if seq != expected_seq:
                faults.append(f"record {expected_seq} is missing (next present is {seq})")
            if row["prev_hash"] != expected_prev:
                faults.append(f"record {seq}: link to the previous record is broken")
            if hashlib.sha256(row["canonical"].encode()).hexdigest() != row["hash"]:
                faults.append(f"record {seq}: content does not match its hash")
            expected_prev, expected_seq = row["hash"], seq + 1
            if len(faults) >= 20:
                break
    return ChainReport(records=count, faults=faults)
