"""The fix log's group commit (api/intake/fix_log.py, migrations/0012_intake_append.sql): concurrent requests
share one statement and one commit, every accepted fix is stored once, and a reader of ``positions ORDER BY
seq`` never sees a later-committed row with a lower seq than one it saw, across two writer processes' worth of
group commits and the per-request transaction at once."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import asyncpg
import httpx

from api.auth.principals import sign
from api.intake.fix_log import FixLog
from api.platform.database import create_pool
from tests.api.factories import bearer, db, db_val, enroll, fix, new_case, now, world


def _supplier_request(w, items):  # type: ignore[no-untyped-def]
    raw = json.dumps({"positions": items}).encode()
    ts = str(int(now().timestamp()))
    return raw, {"content-type": "application/json", "x-afstand-key": w.supplier.key_id, "x-afstand-timestamp": ts,
                 "x-afstand-signature": sign(w.supplier.secret, ts, raw)}


def test_concurrent_requests_share_commits_and_seq_visibility_follows_commit_order(client) -> None:  # type: ignore[no-untyped-def]
    worlds = [world(client) for _ in range(4)]
    ctx = client.app.state.ctx
    base = now() - timedelta(minutes=30)

    async def scenario() -> tuple[list[int], list[list[int]]]:
        # A second process's worth of writers: its own pool and its own group commit, sharing only the database.
        other_pool = await create_pool(ctx.settings.database_url, 1, 2)
        other = FixLog(other_pool)
        seen: list[list[int]] = []
        done = asyncio.Event()

        async def reader() -> None:
            conn = await asyncpg.connect(ctx.settings.database_url)
            last = 0
            try:
                while not done.is_set():
                    rows = await conn.fetch("SELECT seq FROM positions WHERE seq > $1 ORDER BY seq", last)
                    if rows:
                        seen.append([r["seq"] for r in rows])
                        last = rows[-1]["seq"]
                    await asyncio.sleep(0)
            finally:
                await conn.close()

        transport = httpx.ASGITransport(app=client.app)
        statuses: list[int] = []
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            async def app_fix(w, k: int) -> None:  # type: ignore[no-untyped-def]
                item = fix(seconds_ago=0) | {"recorded_at": (base + timedelta(seconds=k)).isoformat()}
                r = await http.post("/v1/me/positions", json={"positions": [item]}, headers=w.victim)
                statuses.append(r.status_code)

            async def tag_batch(w, k: int, bad: bool) -> None:  # type: ignore[no-untyped-def]
                items = [fix(w.serial) | {"recorded_at": (base + timedelta(seconds=k * 10 + j)).isoformat()}
                         for j in range(10)]
                if bad:
                    items.append({"serial": w.serial, "lat": 91})  # rejected: this batch takes its own transaction
                raw, headers = _supplier_request(w, items)
                r = await http.post("/v1/ingest/positions", content=raw, headers=headers)
                statuses.append(r.status_code)

            async def other_process(w, k: int) -> None:  # type: ignore[no-untyped-def]
                from api.intake.fix_log import Member, PendingFix
                at = base + timedelta(hours=1, seconds=k)
                result = await other.append(Member(now(), [PendingFix(w.serial, at, 52.0, 5.1, 8.0, "gps")],
                                                   supplier_id=await ctx.pool.fetchval(
                                                       "SELECT supplier_id FROM devices WHERE serial = $1", w.serial)))
                statuses.append(200 if result.status == "ok" and result.seqs else 500)

            watcher = asyncio.create_task(reader())
            jobs = []
            for k in range(30):
                for n, w in enumerate(worlds):
                    jobs.append(app_fix(w, k))
                    jobs.append(other_process(w, k))
                    if k % 3 == 0:
                        jobs.append(tag_batch(w, k, bad=(k + n) % 6 == 0))
            await asyncio.gather(*jobs)
            await asyncio.sleep(0.2)
            done.set()
            await watcher
        await other_pool.close()
        return statuses, seen

    statuses, seen = client.portal.call(scenario)
    assert set(statuses) == {200}
    expected = len(worlds) * (30 + 30 + 10 * 10)
    assert db_val(client, "SELECT count(*) FROM positions") == expected
    # The reader saw every row, each new read beyond the last: no lower seq ever became visible after a higher.
    flat = [s for batch in seen for s in batch]
    assert len(flat) == expected and flat == sorted(flat)
    # Grouped: far fewer commits (transaction ids) than requests.
    commits = db_val(client, "SELECT count(DISTINCT xmin::text) FROM positions")
    assert commits < len(worlds) * 70 / 2
    # The app's and the tags' devices were marked seen by the grouped statement.
    assert db_val(client, "SELECT count(*) FROM devices WHERE last_seen_at IS NULL") == 0


def test_a_revoked_token_family_gets_401_and_stores_nothing_on_either_path(client) -> None:  # type: ignore[no-untyped-def]
    case_id = new_case(client)
    first = enroll(client, case_id)
    second = client.post("/v1/me/token", json={"refresh_token": first["refresh_token"]}).json()
    assert client.post("/v1/me/token", json={"refresh_token": first["refresh_token"]}).status_code == 401  # reuse
    for body in ({"positions": [fix()]}, {"positions": [fix(), {"lat": 91}]}):
        r = client.post("/v1/me/positions", json=body, headers=bearer(second))
        assert r.status_code == 401, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
    assert db_val(client, "SELECT count(*) FROM positions") == 0
    assert db_val(client, "SELECT count(*) FROM ingest_rejections") == 0
    fresh = enroll(client, case_id, "phone-2")
    item = fix()
    r = client.post("/v1/me/positions", json={"positions": [item, item]}, headers=bearer(fresh))
    assert [x["status"] for x in r.json()["results"]] == ["accepted", "duplicate"]
    assert [row["party"] for row in db(client, "SELECT party FROM positions")] == ["victim"]
