-- Alerts keep both axes of certainty, and late findings (geofence/RULES.md, R-CONF-2 and R-LATE-2).
--
-- alerts.level / max_level / confidence show the confident axis (probable or confirmed readings), and the
-- possible axis only while no confident reading exists; max_level_possible is the possible axis beside them.
-- late_fix_at is the fix time of the newest late finding (a buffered reading more serious than what the alert
-- said at that moment): the operator's queue marks such an alert as a late violation.
ALTER TABLE alerts ADD COLUMN max_level_possible text;
ALTER TABLE alerts ADD COLUMN late_fix_at timestamptz;

-- Every engine change carries both axes, and whether it was made from data that arrived after the fact.
ALTER TABLE alert_changes ADD COLUMN late boolean NOT NULL DEFAULT false;
ALTER TABLE alert_changes ADD COLUMN level_possible text;
ALTER TABLE alert_changes ADD COLUMN max_level_possible text;
