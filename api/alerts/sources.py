"""Every kind of alert and who may raise it: one vocabulary for the queue, the stream and the writers.

The engine raises the position kinds from the fix log (geofence/RULES.md, stored by
:func:`api.alerts.repository.apply_engine_changes`); everything else is raised by one adapter each, through
:func:`api.alerts.repository.open_alert`, which refuses a kind not listed here, so a new source is named here first.
"""

from __future__ import annotations

from geofence.model import AlertKind

ENGINE = "engine"  # api/monitoring/runner.py, from the pure engine's decisions

# kind -> who raises it
RAISED_BY: dict[str, str] = {
    **{kind.value: ENGINE for kind in AlertKind},
    "device_event": "api/intake/device_events.py: a tag reported tamper, battery, GPS loss or going offline",
    "panic": "api/victim/endpoints.py: the victim pressed the panic button in her app",
    "order_ended": "api/contacts/reminders.py: an order ran out while the case was still monitored",
    "delivery_failed": "notifications/dispatcher.py: a message to a person could not be delivered",
    "supplier_outage": "api/alerts/outage.py: many tags of one supplier fell silent together (no case: staff only)",
}


def check_kind(kind: str) -> None:
    if kind not in RAISED_BY:
        raise ValueError(f"unknown alert kind {kind!r}; name it and its source in api/alerts/sources.py")
