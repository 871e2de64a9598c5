-- Properties of customers merged away, re-keyed to the survivor and reduced to one winner per
-- property by the newer-wins order: (update_ts, legacy lowest) then canonical value text.
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
    ORDER BY coalesce(update_ts, -1) DESC, value DESC
) = 1
