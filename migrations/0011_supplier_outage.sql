-- Floods of silence (ARCHITECTURE.md, "Floods of silence"): when many tags of one supplier fall silent together
-- the monitoring room sees one supplier_outage alert, and each tag's silence is stored linked to it.
--
-- A supplier_outage alert spans cases, so it is the one kind without a case; its detail lists the cases.
ALTER TABLE alerts ALTER COLUMN case_id DROP NOT NULL;
ALTER TABLE alerts ADD CONSTRAINT alerts_case_unless_outage CHECK (case_id IS NOT NULL OR kind = 'supplier_outage');
-- The supplier of the silent tag (offender_silent) or of the outage (supplier_outage).
ALTER TABLE alerts ADD COLUMN supplier_id uuid REFERENCES suppliers (id);
-- A silence that may belong to an outage waits here for the grouping decision; its opened change is written
-- when it is released (on its own) or grouped.
ALTER TABLE alerts ADD COLUMN held_since timestamptz;
-- The supplier_outage alert a silence was folded into.
ALTER TABLE alerts ADD COLUMN group_id uuid REFERENCES alerts (id);
CREATE INDEX alerts_held ON alerts (held_since) WHERE held_since IS NOT NULL;
CREATE INDEX alerts_group ON alerts (group_id) WHERE group_id IS NOT NULL;
CREATE INDEX alerts_silence_supplier ON alerts (supplier_id, raised_at) WHERE kind = 'offender_silent';
CREATE UNIQUE INDEX alerts_one_open_outage ON alerts (supplier_id)
    WHERE kind = 'supplier_outage' AND cleared_at IS NULL;
