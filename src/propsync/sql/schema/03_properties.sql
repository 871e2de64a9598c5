-- One row per (customer, property). value is canonical JSON text; update_ts is microseconds since
-- the UNIX epoch, NULL for legacy values that were loaded without a timestamp.
CREATE TABLE IF NOT EXISTS properties (
    customer_id VARCHAR NOT NULL,
    property    VARCHAR NOT NULL,
    value       VARCHAR NOT NULL,
    update_ts   BIGINT,
    batch_id    VARCHAR
)
