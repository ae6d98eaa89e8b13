-- Core schema: cases and their parties, orders, zones, devices, the fix log, alerts and their history.

CREATE TABLE cases (
    id uuid PRIMARY KEY,
    reference text NOT NULL UNIQUE,
    warn_m double precision,
    alert_m double precision,
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'closed')),
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL,
    closed_at timestamptz,
    CHECK ((warn_m IS NULL) = (alert_m IS NULL)),
    CHECK (warn_m IS NULL OR (warn_m >= alert_m AND alert_m BETWEEN 50 AND 20000 AND warn_m BETWEEN 50 AND 20000))
);

-- The victim and the offender of a case: personal data kept apart from the case record.
CREATE TABLE parties (
    id uuid PRIMARY KEY,
    case_id uuid NOT NULL REFERENCES cases (id),
    role text NOT NULL CHECK (role IN ('victim', 'offender')),
    display_name text NOT NULL,
    language text NOT NULL DEFAULT 'nl',
    UNIQUE (case_id, role)
);

CREATE TABLE orders (
    id uuid PRIMARY KEY,
    case_id uuid NOT NULL REFERENCES cases (id),
    kind text NOT NULL,
    reference text NOT NULL,
    valid_from timestamptz NOT NULL,
    valid_until timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL,
    CHECK (valid_until IS NULL OR valid_until > valid_from)
);
CREATE INDEX orders_case ON orders (case_id);

CREATE TABLE zones (
    id uuid PRIMARY KEY,
    case_id uuid NOT NULL REFERENCES cases (id),
    order_id uuid NOT NULL REFERENCES orders (id),
    name text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('exclusion', 'inclusion')),
    geometry jsonb NOT NULL,
    buffer_m double precision NOT NULL DEFAULT 0,
    schedule jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL
);
CREATE INDEX zones_case ON zones (case_id);

CREATE TABLE suppliers (
    id uuid PRIMARY KEY,
    name text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- HMAC needs the secret itself, so it is stored encrypted (AES-GCM with the server key), never in clear.
CREATE TABLE supplier_keys (
    key_id text PRIMARY KEY,
    supplier_id uuid NOT NULL REFERENCES suppliers (id),
    secret_enc bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

-- Offender tags (registered by staff, posting through a supplier) and victim app installations.
CREATE TABLE devices (
    id uuid PRIMARY KEY,
    case_id uuid NOT NULL REFERENCES cases (id),
    role text NOT NULL CHECK (role IN ('offender_tag', 'victim_app')),
    supplier_id uuid REFERENCES suppliers (id),
    serial text,
    installation_id text,
    platform text CHECK (platform IN ('ios', 'android')),
    push_token text,
    refresh_token_hash text UNIQUE,
    refresh_expires_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    last_seen_at timestamptz,
    last_battery_pct double precision,
    CHECK (role <> 'offender_tag' OR (supplier_id IS NOT NULL AND serial IS NOT NULL))
);
CREATE UNIQUE INDEX devices_supplier_serial ON devices (supplier_id, serial) WHERE revoked_at IS NULL AND role = 'offender_tag';
CREATE INDEX devices_case ON devices (case_id);

-- One-time enrollment codes for the victim app: a public lookup part and a hashed secret part.
CREATE TABLE enrollments (
    lookup text PRIMARY KEY,
    secret_hash text NOT NULL,
    case_id uuid NOT NULL REFERENCES cases (id),
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    failed_attempts int NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL
);

-- Accepted fixes. Append-only; ``seq`` is the engine's ordered log (assigned under an advisory lock so a
-- reader never sees a higher seq commit before a lower one). Planned partitioning: by month of recorded_at,
-- which the unique key already contains.
CREATE TABLE positions (
    seq bigserial PRIMARY KEY,
    device_id uuid NOT NULL REFERENCES devices (id),
    case_id uuid NOT NULL REFERENCES cases (id),
    party text NOT NULL CHECK (party IN ('offender', 'victim')),
    recorded_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    lat double precision NOT NULL,
    lon double precision NOT NULL,
    accuracy_m double precision NOT NULL,
    source text NOT NULL DEFAULT 'gps',
    speed_mps double precision,
    heading_deg double precision,
    battery_pct double precision,
    UNIQUE (device_id, recorded_at)
);
CREATE INDEX positions_case_time ON positions (case_id, recorded_at);

CREATE TABLE device_events (
    id bigserial PRIMARY KEY,
    device_id uuid NOT NULL REFERENCES devices (id),
    case_id uuid NOT NULL REFERENCES cases (id),
    recorded_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    type text NOT NULL,
    detail jsonb,
    UNIQUE (device_id, recorded_at, type)
);

-- Nothing a supplier or app sent is silently dropped: each rejected item is kept with its reason.
CREATE TABLE ingest_rejections (
    id bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    channel text NOT NULL,
    sender text NOT NULL,
    item_index int NOT NULL,
    item jsonb,
    reason text NOT NULL
);

CREATE TABLE alerts (
    id uuid PRIMARY KEY,
    case_id uuid NOT NULL REFERENCES cases (id),
    kind text NOT NULL,
    subject_id text,
    zone_id uuid,
    device_id uuid,
    level text NOT NULL,
    max_level text NOT NULL,
    confidence text NOT NULL,
    status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged', 'resolved')),
    opened_at timestamptz NOT NULL,
    cleared_at timestamptz,
    clear_reason text,
    raised_at timestamptz NOT NULL DEFAULT now(),
    min_distance_m double precision,
    late boolean NOT NULL DEFAULT false,
    evidence jsonb NOT NULL DEFAULT '[]',
    detail jsonb NOT NULL DEFAULT '{}',
    outcome text,
    seq bigint NOT NULL DEFAULT 0
);
CREATE INDEX alerts_status ON alerts (status, case_id);
CREATE INDEX alerts_case ON alerts (case_id, opened_at);

-- Every change of every alert, in one gap-free order (``seq``) that the WebSocket stream resumes from.
CREATE TABLE alert_changes (
    seq bigserial PRIMARY KEY,
    alert_id uuid NOT NULL REFERENCES alerts (id),
    n int,
    change text NOT NULL,
    level text NOT NULL,
    confidence text NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    fix_at timestamptz,
    actor text,
    detail jsonb NOT NULL DEFAULT '{}',
    UNIQUE (alert_id, n)
);
CREATE INDEX alert_changes_alert ON alert_changes (alert_id, seq);

CREATE TABLE engine_progress (
    engine_id text PRIMARY KEY,
    last_seq bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE engine_snapshots (
    engine_id text PRIMARY KEY,
    last_seq bigint NOT NULL,
    state bytea NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit_log (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    actor text NOT NULL,
    role text NOT NULL,
    action text NOT NULL,
    case_id uuid,
    reason text,
    detail jsonb NOT NULL DEFAULT '{}'
);
