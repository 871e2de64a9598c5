-- One row per (customer, property), clustered by customer: a GET reads one short range.
-- value is canonical JSON text; update_ts microseconds, NULL for legacy.
CREATE TABLE IF NOT EXISTS properties (
    customer_id TEXT NOT NULL,
    property    TEXT NOT NULL,
    value       TEXT NOT NULL,
    update_ts   INTEGER,
    PRIMARY KEY (customer_id, property)
) WITHOUT ROWID
