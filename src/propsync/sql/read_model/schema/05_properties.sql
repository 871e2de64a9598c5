-- One row per (customer, property), clustered by customer: a GET reads one short range.
-- value is canonical JSON text; update_ts microseconds, NULL for legacy.
CREATE TABLE IF NOT EXISTS properties (
    customer_key INTEGER NOT NULL,
    property_key INTEGER NOT NULL,
    value        TEXT NOT NULL,
    update_ts    INTEGER,
    PRIMARY KEY (customer_key, property_key)
) WITHOUT ROWID
