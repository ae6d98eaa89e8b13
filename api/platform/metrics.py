"""Prometheus metrics served at /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

FIXES = Counter("afstand_fixes_total", "Fixes received, by source and outcome", ["source", "outcome"])
ENCOUNTERS = Counter("afstand_encounters_total", "Bluetooth encounters the victim app reported, by outcome", ["outcome"])
EVENTS = Counter("afstand_device_events_total", "Device events received, by outcome", ["outcome"])
ALERTS = Counter("afstand_alerts_total", "Alert changes, by kind, level and change", ["kind", "level", "change"])
FIX_TO_ALERT = Histogram(
    "afstand_fix_to_alert_seconds",
    "From a fix being received to the alert change it caused being committed",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10),
)
ENGINE_LAG = Gauge("afstand_engine_lag_fixes", "Entries of the log (fixes, encounters) not yet evaluated by the engine")
OUTBOX_DEPTH = Gauge("afstand_outbox_depth", "Notifications waiting for delivery")
DELIVERY_FAILURES = Counter("afstand_delivery_failures_total", "Failed notification attempts", ["channel", "reason"])
NOTICES = Counter("afstand_notices_total", "Notices recorded, by recipient (victim, staff, agency_queue), kind and"
                  " delivery (enqueued, not_pushed, listed)", ["recipient", "kind", "delivery"])
ENGINE_LOG_LAG = Gauge("afstand_engine_log_lag_seconds",
                       "Age of the oldest log entry (fix or encounter) the engine has not evaluated (0: caught up)")
ENGINE_CONFIG_LAG = Gauge("afstand_engine_config_lag_seconds",
                          "At the engine's last configuration check: age of the oldest change it had not loaded yet")
LISTENER_UP = Gauge("afstand_listener_up", "1 while the LISTEN connection is open", ["listener"])
LISTENER_RECONNECTS = Counter("afstand_listener_reconnects_total", "LISTEN connections reopened after a loss",
                              ["listener"])
PARTITIONS_OWNED = Gauge("afstand_partitions_owned", "Engine partitions this process owns")
LEASE_RENEWALS = Counter("afstand_lease_renewals_total", "Lease renewals by outcome (renewed, lost)", ["outcome"])
FAILOVERS = Counter("afstand_failovers_total",
                    "Leases taken over from a process that stopped renewing them, by kind (partition, relay, ...)",
                    ["lease"])
PARTITION_LOG_LAG = Gauge("afstand_partition_log_lag_fixes",
                          "Fixes on a partition's stream not yet evaluated by its engine here", ["partition"])
RELAY_LAG = Gauge("afstand_relay_lag_seconds",
                  "Age of the oldest committed log entry (fix or encounter) the relay has not yet published")
