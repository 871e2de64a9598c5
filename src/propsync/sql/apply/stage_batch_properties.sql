-- The batch's cells keyed by customer and property, duplicates collapsed by the newer-wins order.
-- MERGE does not reject duplicate source keys (the first row silently wins), so this must.
-- A (customer, property) can repeat only among rows of a customer with several rows in the batch
-- (row_customers.shared); only those rows pay for the aggregate that picks the winner.
-- No batch_id column: every row is this batch's, and the same 28-character text on each of 10M
-- rows took 420 MB of an uncompressed temp table; winning_batch_properties.sql adds it to the
-- winners only.
CREATE OR REPLACE TEMP TABLE staged_properties AS
-- Rows to keys first (one text join per row, not per cell), then cells to rows on row_nr.
WITH row_keys AS MATERIALIZED (
    SELECT row_customers.row_nr, batch_customers.customer_key, row_customers.shared
    FROM row_customers
    JOIN batch_customers USING (customer_id)
),

keyed_cells AS (
    SELECT
        row_keys.customer_key,
        property_names.property_id,
        batch_cells.value,
        batch_cells.update_ts,
        row_keys.shared
    FROM batch_cells
    JOIN row_keys USING (row_nr)
    JOIN property_names USING (property)
),

customers_with_one_row AS (
    SELECT customer_key, property_id, value, update_ts
    FROM keyed_cells
    WHERE NOT shared
),

-- The greatest (update_ts, value) of each key, by a hash aggregate: the window it replaces
-- sorted each key's rows (at 1M x 10 with 50k duplicate rows: 0.87 s of CPU for 1M cells).
customers_with_several_rows AS (
    SELECT
        customer_key,
        property_id,
        arg_max({'value': value, 'update_ts': update_ts}, newer_wins_key(update_ts, value)) AS winner
    FROM keyed_cells
    WHERE shared
    GROUP BY customer_key, property_id
)

SELECT customer_key, property_id, value, update_ts
FROM customers_with_one_row
UNION ALL
SELECT customer_key, property_id, winner.value, winner.update_ts
FROM customers_with_several_rows
