-- The intake's common case in one statement (api/intake/fix_log.py): the fixes of several concurrent requests
-- ("members") appended together, so a phone's fix costs no more than its share of one round trip, and the
-- fix-log lock (seq order = commit order) is taken once per group instead of once per request.
--
-- A member is a supplier batch (m_supplier set; its fixes name serials) or one victim app (m_device and the
-- issue time of its token set; its fixes name no serial). In the intake's lock order (api/intake/service.py):
-- 1. the rows of every named active device, locked in id order;
-- 2. each member's outcome: 'revoked' (the app's device is revoked, or its token family is), 'unknown' (a
--    serial is not one of the supplier's active tags), 'offline' (a device has an open offline alert, which a
--    fix restores: the per-request transaction does that) or 'ok'. Only 'ok' members are written; the others
--    get nothing written here and the caller takes them through the per-request path;
-- 3. the fix-log lock, then the fixes of 'ok' members in recorded_at order (ON CONFLICT: a redelivery is not
--    stored again), the devices' last_seen_at and battery, and the wake-up of the engine.
-- The lock is released by the statement's own commit: held to commit, as every writer of positions holds it.
-- Returns one row per stored fix (fix = its position in the f_ arrays, from 1) and one per member (fix NULL).
CREATE FUNCTION intake_append_fixes(
    lock_key bigint, channel text,
    m_supplier uuid[], m_device uuid[], m_issued_at timestamptz[], m_received_at timestamptz[],
    f_member int[], f_serial text[], f_recorded_at timestamptz[], f_lat float8[], f_lon float8[],
    f_accuracy float8[], f_source text[], f_speed float8[], f_heading float8[], f_battery float8[]
) RETURNS TABLE (out_member int, out_fix int, out_seq bigint, out_status text)
LANGUAGE plpgsql AS $fn$
DECLARE
    f_device uuid[];
    f_case uuid[];
    offline uuid[];
    m_status text[];
BEGIN
    WITH locked AS MATERIALIZED (
        SELECT d.id, d.case_id, d.role, d.supplier_id, d.serial, d.tokens_revoked_at FROM devices d
        WHERE d.revoked_at IS NULL AND (
              (d.role = 'victim_app' AND d.id = ANY (m_device))
           OR (d.role = 'offender_tag' AND (d.supplier_id, d.serial) IN (
                  SELECT m_supplier[f.m], f.s FROM unnest(f_member, f_serial) AS f (m, s) WHERE f.s IS NOT NULL)))
        ORDER BY d.id FOR NO KEY UPDATE
    ), resolved AS (
        SELECT f.ord, coalesce(a.id, t.id) AS id, coalesce(a.case_id, t.case_id) AS case_id
        FROM unnest(f_member, f_serial) WITH ORDINALITY AS f (m, s, ord)
        LEFT JOIN locked a ON f.s IS NULL AND a.role = 'victim_app' AND a.id = m_device[f.m]
             AND (a.tokens_revoked_at IS NULL OR a.tokens_revoked_at < m_issued_at[f.m])
        LEFT JOIN locked t ON f.s IS NOT NULL AND t.role = 'offender_tag' AND t.supplier_id = m_supplier[f.m]
             AND t.serial = f.s
    )
    SELECT array_agg(r.id ORDER BY r.ord), array_agg(r.case_id ORDER BY r.ord) INTO f_device, f_case FROM resolved r;

    offline := ARRAY(
        SELECT DISTINCT al.device_id FROM alerts al
        WHERE al.status IN ('open', 'acknowledged') AND al.case_id = ANY (f_case) AND al.kind = 'device_event'
          AND al.device_id = ANY (f_device) AND al.detail->>'family' = 'offline' AND al.cleared_at IS NULL);

    SELECT array_agg(s.status ORDER BY s.m) INTO m_status FROM (
        SELECT g.m, CASE
            WHEN bool_or(r.dev IS NULL) AND m_device[g.m] IS NOT NULL THEN 'revoked'
            WHEN bool_or(r.dev IS NULL) THEN 'unknown'
            WHEN bool_or(r.dev = ANY (offline)) THEN 'offline'
            ELSE 'ok' END AS status
        FROM generate_subscripts(m_received_at, 1) AS g (m)
        LEFT JOIN unnest(f_member, f_device) AS r (m, dev) ON r.m = g.m
        GROUP BY g.m) s;

    IF 'ok' = ANY (m_status) THEN
        PERFORM pg_advisory_xact_lock(lock_key);
        RETURN QUERY
        WITH ins AS (
            INSERT INTO positions (device_id, case_id, party, recorded_at, received_at, lat, lon, accuracy_m, source,
                                   speed_mps, heading_deg, battery_pct)
            SELECT f_device[i], f_case[i], CASE WHEN f_serial[i] IS NULL THEN 'victim' ELSE 'offender' END,
                   f_recorded_at[i], m_received_at[f_member[i]], f_lat[i], f_lon[i], f_accuracy[i], f_source[i],
                   f_speed[i], f_heading[i], f_battery[i]
            FROM generate_subscripts(f_member, 1) AS i
            WHERE m_status[f_member[i]] = 'ok'
            ORDER BY f_recorded_at[i], i
            ON CONFLICT (device_id, recorded_at) DO NOTHING
            RETURNING positions.seq, positions.device_id, positions.recorded_at, positions.battery_pct
        ), seen AS (
            UPDATE devices d SET last_seen_at = GREATEST(d.last_seen_at, u.seen),
                last_battery_pct = CASE WHEN u.battery IS NOT NULL
                    AND (d.last_seen_at IS NULL OR u.battery_at >= d.last_seen_at) THEN u.battery
                    ELSE d.last_battery_pct END
            FROM (SELECT ins.device_id, max(ins.recorded_at) AS seen,
                         (array_agg(ins.battery_pct ORDER BY ins.recorded_at DESC)
                             FILTER (WHERE ins.battery_pct IS NOT NULL))[1] AS battery,
                         max(ins.recorded_at) FILTER (WHERE ins.battery_pct IS NOT NULL) AS battery_at
                  FROM ins GROUP BY ins.device_id) u
            WHERE d.id = u.device_id
        )
        SELECT f_member[i], i, ins.seq, 'stored'
        FROM ins JOIN generate_subscripts(f_member, 1) AS i
          ON ins.device_id = f_device[i] AND ins.recorded_at = f_recorded_at[i] AND m_status[f_member[i]] = 'ok';
        IF FOUND THEN
            PERFORM pg_notify(channel, '');
        END IF;
    END IF;
    RETURN QUERY SELECT g.m, NULL::int, NULL::bigint, m_status[g.m] FROM generate_subscripts(m_received_at, 1) AS g (m);
END
$fn$;
