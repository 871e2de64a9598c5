-- Analysts' long form: one row per customer property, last_update in UNIX seconds (NULL = legacy)
-- as DECIMAL(18, 6): exact to the microsecond, as the API prints it (a DOUBLE would round).
CREATE OR REPLACE VIEW customer_properties AS
SELECT
    customer_id,
    property,
    value::JSON                                         AS value,
    update_ts::DECIMAL(18, 0) * 0.000001::DECIMAL(7, 6) AS last_update,
    update_ts                                           AS last_update_us,
    make_timestamp(update_ts)                           AS last_update_at,
    update_ts IS NULL                                   AS is_legacy,
    batch_id
FROM properties
