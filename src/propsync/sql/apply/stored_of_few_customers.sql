-- stored_of_batch.sql for a batch whose customers are few among the stored ones
-- (store/apply.py, few_batch_customers): first every stored row of the batch's customers, by a join on
-- the customer key alone, then those of its (customer, property) keys. Probing one integer column
-- costs a fraction of probing two: at 5M x 10, 40k staged rows, 242 -> 121 ms; at 1M x 10,
-- 60 -> 45 ms. The first step's rows grow with the batch's share of the customers, so a batch of
-- many customers takes stored_of_batch.sql (at 1M, 200k staged rows: 71 against 82 ms).
CREATE OR REPLACE TEMP TABLE batch_stored AS
WITH batch_keys AS (
    SELECT DISTINCT customer_key FROM staged_properties
),

of_batch_customers AS MATERIALIZED (
    SELECT stored.rowid AS stored_row, stored.customer_key, stored.property_id, stored.update_ts
    FROM property_values AS stored
    SEMI JOIN batch_keys USING (customer_key)
)

SELECT stored.stored_row, stored.customer_key, stored.property_id, stored.update_ts
FROM of_batch_customers AS stored
SEMI JOIN staged_properties AS incoming
    ON stored.customer_key = incoming.customer_key AND stored.property_id = incoming.property_id
