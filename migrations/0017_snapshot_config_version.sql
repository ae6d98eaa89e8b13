-- A snapshot remembers the configuration version its cases were loaded at, so a restart restores it and loads only
-- the cases changed since, instead of configuring every case a second time (api/monitoring/runner.py).
ALTER TABLE engine_snapshots ADD COLUMN config_version bigint NOT NULL DEFAULT 0;
