-- Keeping the victim informed (issue 5): staff members and their assignments per case and agency, the case
-- timeline, contact agreements, the message thread, the victim's preferences, order terms (legal basis,
-- extensions, let-go, expiry), risk screenings, the known addresses for the feasibility check, and the notices
-- the scheduler records for staff and victims.

-- People who work cases. ``sub`` is the subject of their staff token, so a request can be tied to a person.
CREATE TABLE staff_members (
    id uuid PRIMARY KEY,
    sub text NOT NULL UNIQUE,
    display_name text NOT NULL,
    agency text NOT NULL CHECK (agency IN ('police', 'prosecutor', 'probation', 'victim_support', 'veilig_thuis')),
    role_title text NOT NULL,
    phone text,
    email text,
    sash_trained boolean NOT NULL DEFAULT false,
    active boolean NOT NULL DEFAULT true,
    deactivated_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL
);

-- Who is the victim's contact person and who owns the case, per agency. Ended rows are kept as history.
CREATE TABLE case_assignments (
    id uuid PRIMARY KEY,
    case_id uuid NOT NULL REFERENCES cases (id),
    agency text NOT NULL,
    function text NOT NULL CHECK (function IN ('contact_person', 'case_director')),
    staff_id uuid NOT NULL REFERENCES staff_members (id),
    how_to_reach text,
    when_to_reach text,
    assigned_at timestamptz NOT NULL DEFAULT now(),
    assigned_by text NOT NULL,
    ended_at timestamptz,
    ended_by text,
    ended_reason text
);
CREATE UNIQUE INDEX case_assignments_current ON case_assignments (case_id, agency, function) WHERE ended_at IS NULL;
CREATE INDEX case_assignments_staff ON case_assignments (staff_id) WHERE ended_at IS NULL;

-- What happened in the case. ``visibility = 'internal'`` events never reach the victim.
CREATE TABLE timeline_events (
    id uuid PRIMARY KEY,
    case_id uuid NOT NULL REFERENCES cases (id),
    kind text NOT NULL,
    visibility text NOT NULL CHECK (visibility IN ('victim', 'internal')),
    occurred_at timestamptz NOT NULL,
    note text,
    detail jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL
);
CREATE INDEX timeline_events_case ON timeline_events (case_id, occurred_at DESC, id DESC);

-- "Update every N days by channel X", agreed with the victim, kept by the agency's current contact person.
CREATE TABLE contact_agreements (
    id uuid PRIMARY KEY,
    case_id uuid NOT NULL REFERENCES cases (id),
    agency text NOT NULL,
    every_days int NOT NULL CHECK (every_days BETWEEN 1 AND 365),
    channel text NOT NULL,
    next_due_at timestamptz NOT NULL,
    last_contact_at timestamptz,
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL
);
CREATE INDEX contact_agreements_due ON contact_agreements (next_due_at) WHERE active;

CREATE TABLE contact_log (
    id uuid PRIMARY KEY,
    agreement_id uuid NOT NULL REFERENCES contact_agreements (id),
    contacted_at timestamptz NOT NULL,
    channel text NOT NULL,
    note text,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL
);

-- The thread between the victim and her contact persons, with read receipts both ways.
CREATE TABLE case_messages (
    id uuid PRIMARY KEY,
    case_id uuid NOT NULL REFERENCES cases (id),
    sender text NOT NULL CHECK (sender IN ('victim', 'staff')),
    staff_id uuid REFERENCES staff_members (id),
    author text NOT NULL,
    body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    read_by_victim_at timestamptz,
    read_by_staff_at timestamptz,
    read_by_staff text,
    push_status text NOT NULL DEFAULT 'not_needed' CHECK (push_status IN ('not_needed', 'pending', 'enqueued'))
);
CREATE INDEX case_messages_case ON case_messages (case_id, created_at, id);

CREATE TABLE victim_preferences (
    case_id uuid PRIMARY KEY REFERENCES cases (id),
    channel text NOT NULL DEFAULT 'app',
    quiet_start time,
    quiet_end time,
    update_frequency text NOT NULL DEFAULT 'on_change',
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((quiet_start IS NULL) = (quiet_end IS NULL))
);

-- Order terms. Extensions change valid_until in place so the order's zones stay attached to it.
ALTER TABLE orders ADD COLUMN legal_basis text;
ALTER TABLE orders ADD COLUMN extension_count int NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN let_go_at timestamptz;
ALTER TABLE orders ADD COLUMN let_go_by text;
ALTER TABLE orders ADD COLUMN let_go_reason text;
-- The valid_until whose expiry was handled (timeline, operator alert, victim notice): once per end date.
ALTER TABLE orders ADD COLUMN expiry_handled_until timestamptz;

CREATE TABLE order_extensions (
    id uuid PRIMARY KEY,
    order_id uuid NOT NULL REFERENCES orders (id),
    n int NOT NULL,
    previous_until timestamptz NOT NULL,
    valid_until timestamptz NOT NULL,
    reference text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL,
    UNIQUE (order_id, n),
    CHECK (valid_until > previous_until)
);

-- Findings of the feasibility check run when the zone was stored.
ALTER TABLE zones ADD COLUMN findings jsonb NOT NULL DEFAULT '[]';

-- SASH stalking risk screening; only staff marked trained may record one.
CREATE TABLE risk_screenings (
    id uuid PRIMARY KEY,
    case_id uuid NOT NULL REFERENCES cases (id),
    level text NOT NULL CHECK (level IN ('low', 'medium', 'high')),
    screened_on date NOT NULL,
    assessor_id uuid NOT NULL REFERENCES staff_members (id),
    notes text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX risk_screenings_case ON risk_screenings (case_id, screened_on DESC);

-- Known addresses of the parties as points, for the feasibility check. Personal data: never in the audit log.
CREATE TABLE case_addresses (
    case_id uuid PRIMARY KEY REFERENCES cases (id),
    addresses jsonb NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL
);

-- What the scheduler and the routes have to tell a staff member (order reminders, expiries, daily digests).
-- ``dedupe_key`` makes every notice idempotent, so a restarted scheduler never sends one twice.
CREATE TABLE staff_notices (
    id uuid PRIMARY KEY,
    staff_id uuid REFERENCES staff_members (id),
    case_id uuid REFERENCES cases (id),
    kind text NOT NULL,
    dedupe_key text NOT NULL UNIQUE,
    payload jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    delivery text NOT NULL DEFAULT 'pending' CHECK (delivery IN ('pending', 'enqueued', 'read'))
);
CREATE INDEX staff_notices_staff ON staff_notices (staff_id, created_at);

-- What the victim is told outside the thread (e.g. "this protection has ended"), rendered in her language.
CREATE TABLE victim_notices (
    id uuid PRIMARY KEY,
    case_id uuid NOT NULL REFERENCES cases (id),
    kind text NOT NULL,
    dedupe_key text NOT NULL UNIQUE,
    language text NOT NULL,
    title text NOT NULL,
    body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    push_status text NOT NULL DEFAULT 'pending' CHECK (push_status IN ('pending', 'enqueued'))
);
CREATE INDEX victim_notices_case ON victim_notices (case_id, created_at);
