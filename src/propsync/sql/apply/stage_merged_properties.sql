-- Properties of customers merged away, re-keyed to the survivor and reduced to one winner per
-- property by the newer-wins order (sql/schema/16_newer_wins_key.sql).
CREATE OR REPLACE TEMP TABLE staged_properties AS
WITH rekeyed AS (
    SELECT
        merge_keys.customer_key,
        property_values.property_id,
        property_values.value,
        property_values.update_ts,
        property_values.batch_id
    FROM property_values
    JOIN merge_keys ON property_values.customer_key = merge_keys.old_customer_key
)

SELECT customer_key, property_id, value, update_ts, batch_id
FROM rekeyed
QUALIFY row_number() OVER (
    PARTITION BY customer_key, property_id
    ORDER BY newer_wins_key(update_ts, value) DESC
) = 1
