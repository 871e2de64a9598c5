-- One row per (customer, property). value is canonical JSON text; update_ts is microseconds since
-- the UNIX epoch, NULL for legacy values that were loaded without a timestamp.
CREATE TABLE IF NOT EXISTS property_values (
    customer_key BIGINT  NOT NULL,
    property_id  INTEGER NOT NULL,
    value        VARCHAR NOT NULL,
    update_ts    BIGINT,
    batch_id     VARCHAR
)
