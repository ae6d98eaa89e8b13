-- The engine's ordered log is two tables sharing one seq (positions and encounters, migrations/0014): everything
-- that measures how far a reader is behind (the engine's and the relay's lag, /readyz, `afstand cluster status`)
-- reads this view, so an encounter waiting unevaluated counts as lag as a fix does. UNION ALL keeps each side's
-- primary key usable: "seq > $1 ORDER BY seq LIMIT 1" and max(seq) are a merge of two index scans.
CREATE VIEW engine_log AS
    SELECT seq, case_id, received_at FROM positions
    UNION ALL
    SELECT seq, case_id, received_at FROM encounters;
