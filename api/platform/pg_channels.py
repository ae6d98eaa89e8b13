"""Every PostgreSQL NOTIFY channel of the service, in one place.

A notification is only ever a wake-up: whoever listens reads the facts from tables (``positions.seq``,
``config_changes.version``, ``alert_changes.seq``, due ``outbox`` rows), so a lost notification costs latency,
never a fact. ``migrations/0006_config_changes.sql`` spells ``CONFIG`` in its trigger; tests hold the two equal.
"""

from __future__ import annotations

FIXES = "afstand_fixes"  # ingestion committed fixes: the engine reads positions after its last seq
CONFIG = "afstand_config"  # a case's configuration changed: the engine compares config versions
ALERT_CHANGES = "afstand_alert_changes"  # alert changes committed: alert streams read seq > last sent
OUTBOX = "afstand_outbox"  # notifications enqueued: dispatchers claim due rows (the app gives it to the Outbox)
