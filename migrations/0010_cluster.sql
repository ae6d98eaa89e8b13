-- Several processes share the watch: leases say which one does what (api/cluster/leases.py).
--
-- A lease is a row, not an advisory lock, because the store that must refuse a stale owner's write is this
-- database: an engine's write transaction reads its lease row FOR SHARE and checks owner, epoch and expiry, so a
-- process that lost its lease (paused, partitioned from the database, slow to notice) cannot commit a decision
-- after another process took over; the taker's UPDATE waits for that transaction and sees its result. Expiry is
-- judged by this server's clock only, so the processes' clocks never have to agree.
CREATE TABLE leases (
    name text PRIMARY KEY,              -- 'partition:007', 'relay', 'schedulers', 'engine'
    owner text,                         -- cluster_members.member_id; NULL when released
    epoch bigint NOT NULL DEFAULT 0,    -- the fencing token: one more at every grant
    expires_at timestamptz NOT NULL DEFAULT '-infinity',
    granted_at timestamptz
);

-- The live processes, so engine processes can share the partitions evenly and `afstand cluster status` can
-- show who is there. A member that stops heartbeating is simply not counted after one lease period.
CREATE TABLE cluster_members (
    member_id text PRIMARY KEY,
    role text NOT NULL,
    takes_partitions boolean NOT NULL,
    host text NOT NULL,
    pid integer NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    seen_at timestamptz NOT NULL DEFAULT now()
);

-- How far the relay has published the fix log to NATS JetStream (api/monitoring/relay.py), and into how many
-- partitions: a change of that number needs a stop of every engine (README, deployment).
CREATE TABLE log_relay (
    relay_id text PRIMARY KEY,
    last_seq bigint NOT NULL DEFAULT 0,
    partitions integer NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- A partition's engine remembers where it is in its JetStream subject as well as in the fix log.
ALTER TABLE engine_progress ADD COLUMN stream_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE engine_snapshots ADD COLUMN stream_seq bigint NOT NULL DEFAULT 0;

-- The partition of a case: the first 32 bits of its id modulo the number of partitions. Case ids are random
-- (gen_random_uuid), so this spreads evenly; api/cluster/partitioning.py computes the same in Python.
CREATE FUNCTION afstand_partition(case_id uuid, partitions integer) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT (('x' || left(replace(case_id::text, '-', ''), 8))::bit(32)::bigint % partitions)::integer $$;
