-- Bluetooth contact (geofence/RULES.md, R-BLE): the offender tag's key for its rotating identifiers, encrypted
-- with the server key as supplier secrets are (api/platform/secrets.py); never returned by any route.
ALTER TABLE devices ADD COLUMN ble_key_enc bytea;

-- What the victim's phone heard: a match of the case's tag identifier, checked at the edge. Encounters share
-- positions' seq, so the engine's inputs stay one ordered log (the fix-log lock, api/intake/repository.py, is
-- held by every writer of either table): readers of the log read both in seq order. The phone's own position,
-- when it gave one, is kept as evidence only.
CREATE TABLE encounters (
    seq bigint PRIMARY KEY DEFAULT nextval('positions_seq_seq'),
    device_id uuid NOT NULL REFERENCES devices (id),
    case_id uuid NOT NULL REFERENCES cases (id),
    tag_id uuid NOT NULL REFERENCES devices (id),
    recorded_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    beacon_id text NOT NULL,
    rssi integer NOT NULL,
    lat double precision,
    lon double precision,
    accuracy_m double precision,
    UNIQUE (device_id, recorded_at, beacon_id)
);
CREATE INDEX encounters_case_time ON encounters (case_id, recorded_at);
