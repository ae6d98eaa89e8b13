"""`afstand cluster status`: which process owns which lease and partition, and how far behind each engine is.

Exit status 0 when every duty is held by a live process and no partition is further behind than
``AFSTAND_READY_LOG_LAG_S``; 1 otherwise (usable from a monitoring check).
"""

from __future__ import annotations

from typing import Any

from api.cluster import repository
from api.cluster.partitioning import partition_lease
from api.platform.database import connect, resolve_url
from api.platform.settings import Settings


async def cluster_status(settings: Settings) -> dict[str, Any]:
    conn = await connect(resolve_url(settings.database_url, settings.data_dir))
    try:
        leases = {r["name"]: r for r in await repository.leases(conn)}
        members = await repository.members(conn)
        partitioned = bool(settings.nats_url)
        progress = await repository.partition_progress(conn, settings.partitions) if partitioned else []
    finally:
        await conn.close()

    def holder(name: str) -> dict[str, Any]:
        r = leases.get(name)
        live = r is not None and r["live"]
        return {"owner": r["owner"] if live else None, "epoch": r["epoch"] if r else 0,
                "expires_in_s": round(r["expires_in_s"], 1) if live else None}

    duties = {name: holder(name) for name in (["relay"] if partitioned else ["engine"]) + ["schedulers"]}
    partitions = [
        {"partition": p["partition"], **holder(partition_lease(p["partition"])), "last_seq": p["last_seq"],
         "behind_fixes": p["behind_fixes"], "behind_s": round(p["behind_s"] or 0.0, 1)}
        for p in progress
    ]
    healthy = all(d["owner"] for d in duties.values()) and all(
        p["owner"] and p["behind_s"] <= settings.ready_log_lag_s for p in partitions)
    return {
        "healthy": healthy,
        "log": "nats-jetstream" if partitioned else "postgresql",
        "members": [{"member_id": m["member_id"], "role": m["role"], "host": m["host"], "pid": m["pid"],
                     "seen_s_ago": round(m["seen_s_ago"], 1)} for m in members],
        "duties": duties,
        "partitions": partitions,
    }


def render(report: dict[str, Any]) -> str:
    lines = [f"log: {report['log']}   {'healthy' if report['healthy'] else 'IMPAIRED'}", "", "members:"]
    for m in report["members"]:
        lines.append(f"  {m['member_id']:<40} {m['role']:<10} seen {m['seen_s_ago']:>6.1f} s ago")
    lines += ["", "duties:"]
    for name, d in report["duties"].items():
        lines.append(f"  {name:<12} {d['owner'] or 'UNOWNED':<40} epoch {d['epoch']}")
    if report["partitions"]:
        lines += ["", "partition  owner                                     epoch  last_seq  behind (fixes, s)"]
        for p in report["partitions"]:
            lines.append(f"  {p['partition']:>3}      {p['owner'] or 'UNOWNED':<40} {p['epoch']:>5}  {p['last_seq']:>8}"
                         f"  {p['behind_fixes']}, {p['behind_s']}")
    return "\n".join(lines)
