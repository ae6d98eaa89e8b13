"""Configuration reaches the engine by version, whatever happens to the notifications that announce it.

A zone made while the engine's LISTEN connection was cut off, or whose wake-up was never delivered, is still
enforced: the listener reconnects and resynchronises, and the periodic reconciliation compares versions. /readyz
names the part that is unwell meanwhile.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi.testclient import TestClient

from api.monitoring.runner import EngineRunner
from tests.api.factories import db, db_val, fix, new_case, new_supplier, new_tag
from tests.helpers import staff_headers

CENTRE = (5.1214, 52.0907)  # lon, lat of factories.fix()


def _zone(client: TestClient, case_id: str) -> None:
    director = staff_headers(client, "case_director")
    order = client.post(f"/v1/cases/{case_id}/orders", headers=director, json={
        "kind": "exclusion_zone", "reference": "OM-1", "valid_from": "2020-01-01T00:00:00Z", "valid_until": None})
    assert order.status_code == 201, order.text
    zone = client.post(f"/v1/cases/{case_id}/zones", headers=director, json={
        "order_id": order.json()["id"], "name": "home", "kind": "exclusion",
        "geometry": {"type": "Circle", "center": list(CENTRE), "radius_m": 150}, "buffer_m": 100, "schedule": None})
    assert zone.status_code == 201, zone.text


def _until(what: Any, timeout: float = 5.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if what():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError("not within the time allowed")


def _engine(client: TestClient) -> EngineRunner:
    engine = client.app.state.ctx.engine
    assert engine is not None
    return engine


def _zone_alert_raised(client: TestClient, case_id: str, serial: str) -> float:
    supplier = client.app.state.test_supplier
    r = supplier.positions(client, [fix(serial, 20), fix(serial, 10)])
    assert r.status_code == 200, r.text
    return _until(lambda: db_val(client, "SELECT count(*) FROM alerts WHERE case_id = $1 AND kind = 'zone_exclusion'",
                                 uuid.UUID(case_id)) > 0)


def _case_with_tag(client: TestClient) -> tuple[str, str]:
    if not hasattr(client.app.state, "test_supplier"):
        client.app.state.test_supplier = new_supplier(client)
    case_id = new_case(client)
    serial = f"TAG-{uuid.uuid4().hex[:6]}"
    new_tag(client, case_id, client.app.state.test_supplier, serial)
    return case_id, serial


def test_a_zone_made_while_the_engines_listener_was_cut_off_is_enforced(make_client) -> None:  # type: ignore[no-untyped-def]
    # No reconciliation to fall back on within the test: only the listener's own recovery can save it.
    client = make_client(engine_reconcile_s=3600)
    engine = _engine(client)
    case_id, serial = _case_with_tag(client)
    # Every connection of the app to its database is terminated, as an administrator or a failover would.
    killed = db(client, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()")
    assert len(killed) >= 3  # at least the three listeners
    _until(lambda: client.app.state.ctx.watch.listener.reconnects >= 1)
    _zone(client, case_id)
    _until(lambda: engine.config_version == db_val(client, "SELECT version FROM config_version"))
    assert _zone_alert_raised(client, case_id, serial) < 5
    for listener in client.app.state.ctx.listeners:
        _until(lambda listener=listener: listener.connected and listener.reconnects >= 1)
    assert client.get("/readyz").status_code == 200


def test_a_change_whose_wake_up_was_lost_is_loaded_by_reconciliation(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(engine_reconcile_s=1.0)
    engine = _engine(client)
    case_id, serial = _case_with_tag(client)
    _until(lambda: engine.config_version == db_val(client, "SELECT version FROM config_version"))
    _until(lambda: client.get("/readyz").status_code == 200)
    client.portal.call(client.app.state.ctx.watch.listener.stop)  # from now on the engine hears nothing
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["unwell"] == ["listener:engine"], ready.text
    _zone(client, case_id)
    assert _until(lambda: engine.config_version == db_val(client, "SELECT version FROM config_version")) <= 2.5
    assert _zone_alert_raised(client, case_id, serial) < 5


def test_readyz_names_an_engine_configuration_older_than_the_databases(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(engine_reconcile_s=3600, ready_config_lag_s=0.5)
    engine = _engine(client)
    _until(lambda: client.get("/readyz").status_code == 200)  # the engine's first pass over the log is done
    client.portal.call(client.app.state.ctx.watch.listener.stop)
    assert client.get("/readyz").json()["unwell"] == ["listener:engine"]
    _zone(client, new_case(client))
    time.sleep(0.8)
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert set(ready.json()["unwell"]) == {"listener:engine", "engine_config"}, ready.text
    assert ready.json()["detail"]["engine_config_lag_s"] > 0.5


def test_an_engine_behind_pruned_history_reloads_every_case(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(engine_reconcile_s=1.0)
    engine = _engine(client)
    case_id, serial = _case_with_tag(client)
    _until(lambda: engine.config_version == db_val(client, "SELECT version FROM config_version"))
    client.portal.call(client.app.state.ctx.watch.listener.stop)
    _zone(client, case_id)
    db(client, "DELETE FROM config_changes")  # as the daily pruning would after a long outage of the engine
    assert _until(lambda: engine.config_version == db_val(client, "SELECT version FROM config_version")) <= 2.5
    assert _zone_alert_raised(client, case_id, serial) < 5
