-- The batch's cells keyed by customer, duplicates collapsed by the newer-wins order.
-- MERGE does not reject duplicate source keys (the first row silently wins), so this must.
-- A (customer, property) can repeat only among rows of a customer with several rows in the batch
-- (row_customers.shared); only those rows pay for the window that picks the winner.
CREATE OR REPLACE TEMP TABLE staged_properties AS
WITH customers_with_one_row AS (
    SELECT row_customers.customer_id, batch_cells.property, batch_cells.value, batch_cells.update_ts
    FROM batch_cells
    JOIN row_customers USING (row_nr)
    WHERE NOT row_customers.shared
),

customers_with_several_rows AS (
    SELECT row_customers.customer_id, batch_cells.property, batch_cells.value, batch_cells.update_ts
    FROM batch_cells
    JOIN row_customers USING (row_nr)
    WHERE row_customers.shared
    QUALIFY row_number() OVER (
        PARTITION BY row_customers.customer_id, batch_cells.property
        ORDER BY coalesce(batch_cells.update_ts, -1) DESC, batch_cells.value DESC
    ) = 1
)

SELECT customer_id, property, value, update_ts, $batch_id AS batch_id
FROM customers_with_one_row
UNION ALL
SELECT customer_id, property, value, update_ts, $batch_id AS batch_id
FROM customers_with_several_rows
