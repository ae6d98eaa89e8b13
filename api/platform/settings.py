"""Every setting of the service, each read from a documented ``AFSTAND_*`` environment variable.

The defaults are the safe ones: development mode only without an OIDC issuer, closed CORS, strict limits.
README.md lists each variable.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AFSTAND_", extra="ignore", populate_by_name=True)

    # DATABASE_URL is the conventional name; it is read without the prefix.
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    data_dir: Path = Path(".afstand")
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    # /metrics: with a port, served only by a separate listener there (the API's /metrics is 404); with a token,
    # the API's /metrics requires "Authorization: Bearer TOKEN". Neither: open, as /healthz.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"
    metrics_token: str | None = Field(default=None, min_length=16)
    db_pool_min: int = 2
    db_pool_max: int = 10
    db_connect_timeout_s: float = Field(default=5.0, gt=0)  # a database that does not answer is unreachable after this
    startup_timeout_s: float = Field(default=120.0, gt=0)  # the engine's first load of every case, at most
    shutdown_grace_s: float = Field(default=5.0, gt=0)  # open requests and streams get this long after SIGTERM

    # Server secret (hex, 32 bytes) used to sign dev staff tokens and device tokens and to encrypt supplier
    # secrets at rest. Unset: generated once and kept in the data dir.
    secret_key: str | None = None
    oidc_issuer: str | None = None
    # Staff identity through OIDC (SECURITY.md "Identity"). With an issuer set, only its RS256/ES256
    # tokens are accepted (dev tokens are refused); ``oidc_roles_claim`` may be a dotted path such as
    # ``realm_access.roles`` and may hold one role or a list.
    oidc_audience: str = "afstand"
    oidc_roles_claim: str = "roles"
    oidc_jwks_cache_s: float = 3600.0  # how long a fetched JWKS is trusted before it is fetched again
    oidc_jwks_min_refresh_s: float = 10.0  # an unknown ``kid`` refetches the JWKS at most this often
    oidc_leeway_s: int = Field(default=30, ge=0, le=300)  # clock skew allowed on exp / nbf / iat
    oidc_http_timeout_s: float = 5.0

    ingest_max_items: int = 1000
    max_body_bytes: int = Field(default=1_048_576, ge=1024)  # larger request bodies: 413 before authentication
    # Plausible device times (api/intake/service.py PlausibleTimes): fixes and events recorded before this, or more
    # than future_tolerance_s ahead of server time, are refused per item; a panic is raised at server time.
    plausible_since: AwareDatetime = datetime(2020, 1, 1, tzinfo=timezone.utc)
    future_tolerance_s: float = Field(default=300.0, ge=0)
    hmac_window_s: int = 300
    access_token_ttl_s: int = 900
    refresh_token_ttl_s: int = 30 * 24 * 3600
    enrollment_ttl_s: int = 24 * 3600
    enrollment_max_failures: int = 5

    # The process's part of the watch (`afstand serve --role`): all (API, engine, dispatcher, schedulers: one
    # process, the default), api (stateless, any number of replicas), engine (fixes -> decisions), dispatcher
    # (notifications; several may run). README, deployment.
    role: Literal["all", "api", "engine", "dispatcher"] = "all"
    # Processes of this role `afstand serve` runs on its port (uvicorn workers). Python serves HTTP on one core per
    # process; with 2 on a 2-core machine the API has both cores, and the leases keep one engine among them.
    workers: int = Field(default=1, ge=1, le=64)
    # With a NATS URL the fix log is published to JetStream in `partitions` partitions and engines share them;
    # without, the engine reads PostgreSQL's positions and one process holds it (api/monitoring/).
    nats_url: str | None = None
    nats_stream: str = Field(default="AFSTAND_FIXES", pattern=r"^[A-Za-z0-9_-]+$")
    nats_subject_prefix: str = Field(default="afstand", pattern=r"^[A-Za-z0-9_-]+$")
    nats_replicas: int = Field(default=1, ge=1, le=5)  # 3 on a three-node NATS cluster
    nats_max_age_s: float = Field(default=7 * 24 * 3600.0, gt=0)  # how long the stream keeps fixes
    partitions: int = Field(default=16, ge=1, le=1024)  # fixed per deployment: changing it needs every engine stopped
    # Leases (api/cluster/leases.py): a dead process's duties move after at most lease_ttl_s + lease_round_s.
    lease_ttl_s: float = Field(default=5.0, gt=0)
    lease_round_s: float = Field(default=0.5, gt=0)
    # A partition's engine runs no clock-driven check while the relay is further behind than this: a fix that
    # was committed but not yet published must not look like silence.
    relay_max_lag_s: float = Field(default=5.0, gt=0)
    engine_batch_size: int = 1000
    engine_poll_s: float = 1.0
    engine_coalesce_s: float = Field(default=0.002, ge=0)  # after a wake-up, wait this long so fixes come in batches
    # In a single process (role all, no NATS) the engine runs on an event loop of its own, in its own thread, so the
    # API cannot starve it (api/monitoring/engine_thread.py).
    engine_thread: bool = True
    engine_tick_s: float = 5.0
    # Copying the state out for a snapshot holds the engine ~0.15–0.4 s at 5,000 cases; every 30 s that delayed
    # over 1 % of alerts (bench/README.md, national), every 2 minutes it costs a crash at most 2 minutes of replay.
    engine_snapshot_every_s: float = 120.0
    engine_reconcile_s: float = Field(default=30.0, gt=0)  # compare config versions at least this often
    # /readyz answers 503 beyond these bounds (api/platform/health_endpoints.py).
    ready_config_lag_s: float = Field(default=40.0, gt=0)  # a config change the engine has not loaded, this old
    ready_log_lag_s: float = Field(default=30.0, gt=0)  # the oldest log entry the engine has not evaluated
    ready_dispatch_s: float = Field(default=30.0, gt=0)  # the dispatcher has not finished a round for this long
    victim_max_age_s: float = 120
    coarse_accuracy_m: float = 200
    offender_silent_s: float = 300
    victim_silent_s: float = 900
    history_s: float = 6 * 3600
    walking_speed_mps: float = 1.5  # geofence/RULES.md R-PAIR-2
    delivery_window_s: float = 10.0  # R-HOLD-3
    clock_fix_max_age_s: float = 180.0  # R-TICK-2
    near_silent_s: float = Field(default=90.0, gt=0)  # silence of a device near the victim (R-TICK-6)
    ble_lapse_s: float = Field(default=60.0, gt=0)  # an encounter holds the Bluetooth trigger this long (R-BLE-2)
    fast_approach_s: float = Field(default=300.0, ge=0)  # time to the violation distance that warns (R-ETA-2)
    # Floods of silence (api/alerts/outage.py): this many tags of one supplier, and this share of its active
    # tags, silent within the window are one supplier_outage alert. A silence that may belong to one waits up to
    # outage_hold_s for that decision; victims of the cases are told once an outage lasts outage_victim_after_s.
    outage_min_devices: int = Field(default=20, ge=1)
    outage_min_share: float = Field(default=0.10, ge=0, le=1)
    outage_window_s: float = Field(default=300.0, gt=0)
    outage_hold_s: float = Field(default=60.0, ge=0, le=300)
    outage_victim_after_s: float = Field(default=900.0, ge=0)
    outage_check_s: float = Field(default=5.0, ge=0)  # how often the grouping runs; 0 disables it
    outage_batch: int = Field(default=250, ge=1)  # silences written per transaction (the alert-log lock's hold)

    # Keeping the victim informed: the feasibility check, order reminders and expiry, the daily digest.
    feasibility_gps_accuracy_m: float = 100.0
    feasibility_max_zone_km2: float = 25.0
    feasibility_implausible_zone_km2: float = Field(default=10_000.0, gt=0)  # larger zones are refused (blocking)
    order_reminder_days: tuple[int, ...] = (14, 7, 2)
    order_check_s: float = 60.0  # how often reminders and expiries are checked; 0 disables the scheduler
    digest_hour: int = Field(default=8, ge=0, le=23)  # local (Europe/Amsterdam) hour of the daily overdue digest
    # The victim is told this many days before an order ends when no extension has been decided.
    victim_order_notice_days: float = Field(default=7.0, ge=0, le=90)
    # Development only: moves the scheduler's, the engine's and the notifications' clock (never token,
    # enrollment-code or signature expiry). Refused when an OIDC issuer is configured.
    dev_clock_offset_s: float = 0.0
    # Staff notices (reminders, expiries, digests, the agency queue) are posted here, signed as the police webhook.
    staff_webhook_url: str | None = None
    staff_webhook_key_id: str = "afstand"
    staff_webhook_secret: str | None = None

    # Notifications (notifications/): outbox dispatcher, channels, deadlines. A channel without its URL / project
    # is off; a message that has no channel left shows as delivery_failed on its alert.
    notify_enabled: bool = True
    notify_workers: int = 2
    notify_batch: int = 100
    notify_concurrency: int = 32
    notify_poll_s: float = 1.0
    notify_lease_s: float = 60.0
    notify_deadline_s: float = 900.0
    notify_backoff_base_s: float = 1.0
    notify_backoff_max_s: float = 60.0
    victim_ack_deadline_s: float = 30.0
    auto_escalate_after_s: float = 60.0
    pursuit_interval_s: int = 15
    fcm_project_id: str | None = None
    fcm_url: str | None = None
    fcm_credentials_file: str | None = None
    fcm_timeout_s: float = 10.0
    fcm_ttl_s: int = 60
    fcm_critical_alerts: bool = False
    sms_url: str | None = None
    sms_api_key: str | None = None
    sms_sender: str = "Afstand"
    police_webhook_url: str | None = None
    police_webhook_key_id: str = "afstand"
    police_webhook_secret: str | None = None
    webhook_timeout_s: float = 10.0

    # Privacy: reading positions, retention, evidence packages. See SECURITY.md.
    track_max_span_h: float = Field(default=24.0, gt=0)  # longest period one track read may cover
    retention_positions_days: float = Field(default=30.0, gt=0)  # positions, encounters, rejections older: purged
    retention_evidence_days_after_close: float = Field(default=2557.0, ge=0)  # ~7 years after the case closes
    retention_evidence_margin_s: float = Field(default=600.0, ge=0)  # fixes this long around an alert are evidence
    retention_check_s: float = 3600.0  # how often the purge runs; 0 turns the scheduled job off

    # Need-to-know and abuse resistance (SECURITY.md "Need-to-know", "Abuse resistance").
    operator_grace_s: float = Field(default=12 * 3600.0, ge=0)  # operators keep a case this long after its last alert is resolved
    rate_limit_enabled: bool = True
    # Proxies (IPs or CIDRs, comma-separated) whose X-Forwarded-For names the client; empty: the header is ignored.
    trusted_proxies: str = ""
    rate_limit_per_min: float = Field(default=10.0, gt=0)  # sustained requests per minute per client IP and route
    rate_limit_burst: int = Field(default=10, ge=1)  # requests allowed at once before the sustained rate applies
    rate_limit_max_keys: int = Field(default=100_000, ge=100)  # buckets kept in memory; the oldest are dropped
    hmac_seen_prune_s: float = 60.0  # how often replay records older than the window are deleted
    # How often the event loop's lag is sampled (api/platform/loop_lag.py); each sample is one short timer.
    loop_lag_interval_s: float = Field(default=0.05, gt=0)


    @model_validator(mode="after")
    def _no_clock_offset_in_production(self) -> "Settings":
        if self.dev_clock_offset_s and self.oidc_issuer:
            raise ValueError("AFSTAND_DEV_CLOCK_OFFSET_S is for development only and is refused when"
                             " AFSTAND_OIDC_ISSUER is set")
        return self


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
