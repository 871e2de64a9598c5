-- The batch's cells keyed by customer, duplicates collapsed by the newer-wins order.
-- MERGE does not reject duplicate source keys (the first row silently wins), so this must.
CREATE OR REPLACE TEMP TABLE staged_properties AS
WITH keyed AS (
    SELECT row_customers.customer_id, batch_cells.property, batch_cells.value, batch_cells.update_ts
    FROM batch_cells
    JOIN row_customers USING (row_nr)
)

SELECT customer_id, property, value, update_ts, $batch_id AS batch_id
FROM keyed
QUALIFY row_number() OVER (
    PARTITION BY customer_id, property
    ORDER BY coalesce(update_ts, -1) DESC, value DESC
) = 1
