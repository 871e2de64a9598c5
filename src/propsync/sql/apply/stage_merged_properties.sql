-- Properties of customers merged away, re-keyed to the survivor and reduced to one winner per
-- property by the newer-wins order: (update_ts, legacy lowest) then canonical value text.
CREATE OR REPLACE TEMP TABLE staged_properties AS
WITH rekeyed AS (
    SELECT merges.customer_id, properties.property, properties.value, properties.update_ts, properties.batch_id
    FROM properties
    JOIN merges ON properties.customer_id = merges.old_customer_id
)

SELECT customer_id, property, value, update_ts, batch_id
FROM rekeyed
QUALIFY row_number() OVER (
    PARTITION BY customer_id, property
    ORDER BY coalesce(update_ts, -1) DESC, value DESC
) = 1
