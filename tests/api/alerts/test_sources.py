"""Every alert kind has a named source (api/alerts/sources.py); a writer cannot invent one."""

import asyncio
import uuid
from datetime import datetime, timezone

import pytest

from api.alerts import repository, sources
from geofence.model import AlertKind


def test_every_engine_kind_is_raised_by_the_engine_and_every_other_kind_by_one_named_adapter() -> None:
    assert {kind.value for kind in AlertKind} <= set(sources.RAISED_BY)
    assert all(sources.RAISED_BY[kind.value] == sources.ENGINE for kind in AlertKind)
    adapters = {kind: source for kind, source in sources.RAISED_BY.items() if source != sources.ENGINE}
    assert set(adapters) == {"device_event", "panic", "order_ended", "delivery_failed", "supplier_outage"}


def test_an_unknown_kind_is_refused_before_anything_is_written() -> None:
    # No connection is given: the refusal must come before the first statement.
    with pytest.raises(ValueError, match="unknown alert kind 'geofence'"):
        asyncio.run(repository.open_alert(
            None, outbox=None, alert_id=uuid.uuid4(), case_id=uuid.uuid4(), kind="geofence",  # type: ignore[arg-type]
            level="warning", confidence="confirmed", opened_at=datetime.now(timezone.utc)))
