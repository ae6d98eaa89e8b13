-- The audit log is append-only and hash-chained: each record's hash covers the previous record's hash and
-- its own content, so altering or deleting any record breaks the chain that `afstand audit verify` walks.
-- A trigger builds the chain, so no writer can forget it; another trigger refuses UPDATE and DELETE.

ALTER TABLE audit_log ADD COLUMN chain_seq bigint UNIQUE;
ALTER TABLE audit_log ADD COLUMN prev_hash text;
ALTER TABLE audit_log ADD COLUMN hash text;

CREATE FUNCTION audit_log_canonical(r audit_log) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT concat_ws('|', r.chain_seq::text, to_char(r.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                     r.actor, r.role, r.action, coalesce(r.case_id::text, ''), coalesce(r.reason, ''),
                     r.detail::text, coalesce(r.prev_hash, ''))
$$;

CREATE FUNCTION audit_log_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last audit_log;
BEGIN
    -- Serialise appends so the chain has one order, whatever the commit order of concurrent writers.
    PERFORM pg_advisory_xact_lock(1635083380);
    SELECT * INTO last FROM audit_log ORDER BY chain_seq DESC NULLS LAST LIMIT 1;
    NEW.chain_seq := coalesce(last.chain_seq, 0) + 1;
    NEW.prev_hash := coalesce(last.hash, 'genesis');
    NEW.hash := encode(sha256(convert_to(audit_log_canonical(NEW), 'UTF8')), 'hex');
    RETURN NEW;
END $$;

CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_chain();

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
