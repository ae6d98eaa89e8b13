-- Notifications: a transactional outbox written in the same transaction as the alert change that causes it,
-- every delivery attempt, per-case notification policy, and the endpoints that deliveries need.

-- Where a supplier wants pursuit-mode requests (raise / lower the reporting rate of its tags). Null: none.
ALTER TABLE suppliers ADD COLUMN webhook_url text;

-- A push token that FCM called unregistered / invalid is cleared and the fact kept, so staff can see why.
ALTER TABLE devices ADD COLUMN push_token_disabled_at timestamptz;
ALTER TABLE devices ADD COLUMN push_token_disabled_reason text;

-- Per-case overrides of the notification policy (see notifications/policy.py) and the victim's SMS number.
CREATE TABLE notification_policies (
    case_id uuid PRIMARY KEY REFERENCES cases (id),
    victim_phone text,
    policy jsonb NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL
);

-- One row per message per channel (and per durable timer: acknowledgement and escalation deadlines).
-- ``idempotency_key`` is unique, so the server never enqueues the same message twice; ``message_key`` travels
-- in the payload (and as FCM collapse key) so the app can drop a resend after a crash between send and record.
-- Rows with the same ``ordering_key`` are delivered strictly in ``id`` order.
CREATE TABLE outbox (
    id bigserial PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    message_key uuid NOT NULL,
    alert_id uuid REFERENCES alerts (id),
    case_id uuid NOT NULL REFERENCES cases (id),
    change_seq bigint,
    recipient text NOT NULL CHECK (recipient IN ('victim', 'police', 'supplier', 'system')),
    channel text NOT NULL CHECK (channel IN ('push', 'sms', 'police_webhook', 'supplier_webhook', 'timer')),
    purpose text NOT NULL,
    safety boolean NOT NULL,
    ordering_key text,
    payload jsonb NOT NULL DEFAULT '{}',
    status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'dead', 'skipped', 'done')),
    attempts int NOT NULL DEFAULT 0,
    enqueued_at timestamptz NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    deadline timestamptz NOT NULL,
    last_error text,
    provider_id text,
    sent_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE status IN ('queued', 'sending');
CREATE INDEX outbox_order ON outbox (ordering_key, id) WHERE status IN ('queued', 'sending');
CREATE INDEX outbox_alert ON outbox (alert_id, id);
CREATE INDEX outbox_recent ON outbox (case_id, recipient, enqueued_at) WHERE NOT safety;

CREATE TABLE delivery_attempts (
    id bigserial PRIMARY KEY,
    outbox_id bigint NOT NULL REFERENCES outbox (id),
    attempt int NOT NULL,
    started_at timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    outcome text NOT NULL CHECK (outcome IN ('sent', 'retry', 'failed', 'unknown')),
    reason text,
    provider_id text,
    retry_after_s double precision
);
CREATE INDEX delivery_attempts_outbox ON delivery_attempts (outbox_id, attempt);
