"""The engine's log is positions and encounters in one seq order: an encounter waiting unevaluated is lag, in
the engine's gauge, in /readyz, in the relay's lag and in `afstand cluster status`, as a fix would be."""

from __future__ import annotations

import time
from datetime import timedelta

from api.cluster import repository as cluster_repository
from api.monitoring import repository
from tests.api.factories import db, db_val, now, world
from tests.api.privacy.support import BLE_KEY, hear


def _until(what, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.05)


def test_an_encounter_committed_while_the_engine_is_stopped_shows_as_lag(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(ready_log_lag_s=0.5)
    ctx = client.app.state.ctx
    w = world(client, ble_key=BLE_KEY)
    _until(lambda: client.get("/readyz").status_code == 200)  # the engine has read the log so far
    engine = ctx.engine
    client.portal.call(engine.stop)
    done = engine.last_seq
    assert done == db_val(client, "SELECT coalesce(max(seq), 0) FROM positions")  # no fix waits

    seq = hear(client, w, now() - timedelta(seconds=2))
    assert seq > done
    time.sleep(0.7)

    lag = client.portal.call(repository.log_lag, ctx.pool, done)
    assert lag["head"] == seq and lag["age_s"] > 0.5
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "engine_log_lag" in ready.json()["unwell"], ready.text
    assert ready.json()["detail"]["engine_log_lag_s"] > 0.5

    # The relay and a partition engine that stand where this engine stopped are behind by the encounter alone.
    db(client, "INSERT INTO log_relay (relay_id, last_seq, partitions) VALUES ($1, $2, 1)", repository.RELAY_ID, done)
    db(client, "INSERT INTO engine_progress (engine_id, last_seq) VALUES ('partition-000', $1)", done)
    assert client.portal.call(repository.relay_lag, ctx.pool)["age_s"] > 0.5
    [partition] = client.portal.call(cluster_repository.partition_progress, ctx.pool, 1)
    assert partition["last_seq"] == done and partition["behind_fixes"] == 1 and partition["behind_s"] > 0.5
