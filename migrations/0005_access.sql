-- Need-to-know per case and abuse resistance (issue 6). See SECURITY.md, "Need-to-know" and "Abuse resistance".
--
-- Who may reach a case is decided in one place: the function staff_may_reach below. api/access.py calls it for
-- every staff request that names a case or an alert, and the list routes filter with it. Sources of reach:
--   * the roster of issue 5 (case_assignments: the case director and contact persons per agency, registered
--     staff members only; a contact person of the prosecutor is the victim coordinator);
--   * case_access: grants by subject (the creator of a case, a colleague, the prosecutor's coordinator), for
--     staff who need the case without being the agency's named person on the roster;
--   * for operators: an open or acknowledged alert on the case, an alert resolved within the grace period,
--     or the operator's own watch list;
--   * the admin role reaches every case; the auditor role none (it reads the audit log only).
-- A deactivated staff member reaches nothing, whatever grants remain.

CREATE TABLE case_access (
    id uuid PRIMARY KEY,
    case_id uuid NOT NULL REFERENCES cases (id),
    staff_sub text NOT NULL,
    relation text NOT NULL CHECK (relation IN ('case_director', 'contact_person', 'prosecutor_coordinator')),
    granted_at timestamptz NOT NULL DEFAULT now(),
    granted_by text NOT NULL,
    reason text,
    ended_at timestamptz,
    ended_by text,
    ended_reason text
);
CREATE UNIQUE INDEX case_access_current ON case_access (case_id, staff_sub) WHERE ended_at IS NULL;
CREATE INDEX case_access_sub ON case_access (staff_sub) WHERE ended_at IS NULL;

-- Cases an operator follows without an alert (e.g. a high-risk case in its first nights).
CREATE TABLE operator_watch (
    staff_sub text NOT NULL,
    case_id uuid NOT NULL REFERENCES cases (id),
    added_at timestamptz NOT NULL DEFAULT now(),
    added_by text NOT NULL,
    PRIMARY KEY (staff_sub, case_id)
);
CREATE INDEX operator_watch_case ON operator_watch (case_id);

CREATE INDEX case_assignments_case ON case_assignments (case_id) WHERE ended_at IS NULL;

CREATE FUNCTION staff_may_reach(p_case uuid, p_sub text, p_role text, p_grace_s double precision)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN p_role = 'admin' THEN true
        WHEN p_role IS NULL OR p_role NOT IN ('operator', 'case_director', 'contact_person') THEN false
        WHEN EXISTS (SELECT 1 FROM staff_members m WHERE m.sub = p_sub AND NOT m.active) THEN false
        ELSE EXISTS (SELECT 1 FROM case_access g
                     WHERE g.case_id = p_case AND g.staff_sub = p_sub AND g.ended_at IS NULL)
          OR EXISTS (SELECT 1 FROM case_assignments a JOIN staff_members m ON m.id = a.staff_id
                     WHERE a.case_id = p_case AND m.sub = p_sub AND a.ended_at IS NULL)
          OR (p_role = 'operator' AND (
                 EXISTS (SELECT 1 FROM operator_watch w WHERE w.case_id = p_case AND w.staff_sub = p_sub)
              OR EXISTS (SELECT 1 FROM alerts x WHERE x.case_id = p_case AND x.status IN ('open', 'acknowledged'))
              OR EXISTS (SELECT 1 FROM alerts x JOIN alert_changes ch ON ch.alert_id = x.id
                         WHERE x.case_id = p_case AND x.status = 'resolved' AND ch.change = 'resolved'
                           AND ch.at > now() - make_interval(secs => p_grace_s))))
    END
$$;

-- Supplier HMAC replay protection: a signature is accepted once. Rows older than the timestamp window are
-- pruned (a request that old is refused by its timestamp anyway).
CREATE TABLE hmac_seen (
    signature text PRIMARY KEY,
    key_id text NOT NULL,
    seen_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX hmac_seen_at ON hmac_seen (seen_at);

-- Supplier key rotation: which key a new key replaces (both work until the old one is revoked).
ALTER TABLE supplier_keys ADD COLUMN replaces text REFERENCES supplier_keys (key_id);
