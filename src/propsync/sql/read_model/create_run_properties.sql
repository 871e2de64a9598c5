-- A follow's property rows by their text ids, before their keys are looked up (a temporary
-- table of the follower's connection; emptied after each use).
CREATE TEMP TABLE IF NOT EXISTS run_properties (
    customer_id TEXT NOT NULL,
    property    TEXT NOT NULL,
    value       TEXT NOT NULL,
    update_ts   INTEGER
)
