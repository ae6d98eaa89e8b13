-- The monitoring room's load (GET /v1/alerts/load) reads the last day of alerts by the time they were raised and
-- the acknowledgements of that day: without these it would scan every alert and every change ever made.
CREATE INDEX alerts_raised_at ON alerts (raised_at);
CREATE INDEX alert_changes_acknowledged ON alert_changes (at) WHERE change = 'acknowledged';
