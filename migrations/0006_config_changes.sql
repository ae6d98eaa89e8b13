-- What the engine enforces (cases, their orders, zones and devices) carries a configuration version that is bumped
-- in the same transaction as the change, by triggers, so that no writer (a router, the order-expiry job, a manual
-- fix in psql) can forget it. The NOTIFY that goes with it is only a wake-up: the engine compares versions.
--
-- The version lives in one counter row rather than a sequence: a transaction that bumps it holds the row's lock
-- until it commits, so versions become visible in order and "everything up to version V" is a real point in time.
CREATE TABLE config_version (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version bigint NOT NULL,
    changed_at timestamptz NOT NULL
);
INSERT INTO config_version (version, changed_at) VALUES (0, now());

-- One row per version: which case changed. The engine reloads the cases named after the version it holds.
-- Rows older than a day are pruned by the engine; one that finds its version older than the oldest row left
-- reloads every case instead.
CREATE TABLE config_changes (
    version bigint PRIMARY KEY,
    case_id uuid NOT NULL,
    changed_at timestamptz NOT NULL
);
CREATE INDEX config_changes_changed_at ON config_changes (changed_at);

CREATE FUNCTION config_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    -- The case a row belongs to, before and after: cases name themselves by id, other tables by case_id
    -- (TG_ARGV[0]). NULL where the row did not exist (OLD on INSERT, NEW on DELETE).
    old_case uuid := CASE WHEN TG_OP <> 'INSERT' THEN (to_jsonb(OLD) ->> TG_ARGV[0])::uuid END;
    new_case uuid := CASE WHEN TG_OP <> 'DELETE' THEN (to_jsonb(NEW) ->> TG_ARGV[0])::uuid END;
    changed uuid;
    v bigint;
BEGIN
    -- A row that moved to another case changed both.
    FOREACH changed IN ARRAY ARRAY(SELECT DISTINCT c FROM unnest(ARRAY[old_case, new_case]) c WHERE c IS NOT NULL)
    LOOP
        UPDATE config_version SET version = version + 1, changed_at = clock_timestamp() RETURNING version INTO v;
        INSERT INTO config_changes (version, case_id, changed_at) VALUES (v, changed, clock_timestamp());
    END LOOP;
    -- Delivered at commit, collapsed to one per transaction: the engine wakes and compares versions.
    PERFORM pg_notify('afstand_config', '');
    RETURN NULL;
END $$;

CREATE TRIGGER cases_config AFTER INSERT OR DELETE ON cases
    FOR EACH ROW EXECUTE FUNCTION config_changed('id');
CREATE TRIGGER cases_config_update AFTER UPDATE ON cases
    FOR EACH ROW WHEN ((OLD.id, OLD.status, OLD.warn_m, OLD.alert_m) IS DISTINCT FROM (NEW.id, NEW.status, NEW.warn_m, NEW.alert_m))
    EXECUTE FUNCTION config_changed('id');

-- Orders change rarely and each change (an extension, a let-go, the expiry being handled) is worth a reload.
CREATE TRIGGER orders_config AFTER INSERT OR UPDATE OR DELETE ON orders
    FOR EACH ROW EXECUTE FUNCTION config_changed('case_id');

CREATE TRIGGER zones_config AFTER INSERT OR UPDATE OR DELETE ON zones
    FOR EACH ROW EXECUTE FUNCTION config_changed('case_id');

-- Devices are updated on every ingested batch (last_seen_at) and token refresh: only what the engine reads counts.
CREATE TRIGGER devices_config AFTER INSERT OR DELETE ON devices
    FOR EACH ROW EXECUTE FUNCTION config_changed('case_id');
CREATE TRIGGER devices_config_update AFTER UPDATE ON devices
    FOR EACH ROW WHEN ((OLD.case_id, OLD.role, OLD.revoked_at) IS DISTINCT FROM (NEW.case_id, NEW.role, NEW.revoked_at))
    EXECUTE FUNCTION config_changed('case_id');
