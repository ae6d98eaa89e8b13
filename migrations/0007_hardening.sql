-- Hardening against hostile and concurrent use. See SECURITY.md ("Audit", "Identity").

-- Every actor has one form, KIND:NAME (operator:jan, victim_app:<device id>, system:retention, cli:root), so an
-- auditor can filter by actor and never meets a bare name that could be anyone. NOT VALID: rows written before
-- this rule stay as they are (the log is append-only); every new row is checked.
ALTER TABLE audit_log ADD CONSTRAINT audit_log_actor_form
    CHECK (actor ~ '^(admin|operator|case_director|contact_person|auditor|victim_app|enrollment|system|cli):.+')
    NOT VALID;
ALTER TABLE alert_changes ADD CONSTRAINT alert_changes_actor_form
    CHECK (actor IS NULL
           OR actor ~ '^(admin|operator|case_director|contact_person|auditor|victim_app|enrollment|system|cli):.+')
    NOT VALID;

-- The chain is appended under an advisory lock, and the previous record is read after it is taken. In READ
-- COMMITTED each statement sees what committed before it; in REPEATABLE READ or SERIALIZABLE the transaction's
-- snapshot may predate the lock, so the chain trigger would link to a stale head and two concurrent audited reads
-- would collide on chain_seq. Such an append is refused with a clear message instead: audited reads take their
-- snapshot in one transaction and record the read in its own (api/routers/track.py). The insert fails whichever
-- BEFORE trigger runs first, so the chain trigger itself is unchanged.
CREATE FUNCTION audit_log_read_committed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'audit records are appended only in READ COMMITTED transactions (this one is %)',
            current_setting('transaction_isolation')
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'read in a REPEATABLE READ transaction, then record the read in its own transaction';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER audit_log_a_read_committed BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_read_committed();

-- Refresh tokens rotate on every use. A spent token is remembered until it would have expired: when it comes
-- back, someone holds a copy (stolen from the phone or its backup), and the whole family of tokens of that
-- enrollment is revoked (api/routers/me.py).
CREATE TABLE spent_refresh_tokens (
    token_hash text PRIMARY KEY,
    device_id uuid NOT NULL REFERENCES devices (id),
    spent_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX spent_refresh_tokens_device ON spent_refresh_tokens (device_id, expires_at);
-- Access tokens issued before this instant are refused (a revoked token family).
ALTER TABLE devices ADD COLUMN tokens_revoked_at timestamptz;
