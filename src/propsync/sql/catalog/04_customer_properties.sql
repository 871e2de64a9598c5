-- Analysts' long form: one row per customer property, last_update in UNIX seconds (NULL = legacy).
CREATE OR REPLACE VIEW customer_properties AS
SELECT
    customer_id,
    property,
    value::JSON                                  AS value,
    update_ts::DECIMAL(20, 0) / 1000000          AS last_update,
    update_ts                                    AS last_update_us,
    make_timestamp(update_ts)                    AS last_update_at,
    update_ts IS NULL                            AS is_legacy,
    batch_id
FROM properties
