-- Every customer the batch's rows resolved to, with its key: known customers as looked up, new
-- ones with a key drawn from customer_key_seq (insert_new_customers.sql stores those).
CREATE OR REPLACE TEMP TABLE batch_customers AS
WITH mentioned AS (
    SELECT customer_id FROM row_customers
    UNION
    SELECT customer_id FROM new_ids
),

new_customers AS (
    SELECT customer_id
    FROM mentioned
    ANTI JOIN known_customers USING (customer_id)
)

SELECT customer_id, customer_key, false AS is_new
FROM known_customers
UNION ALL
SELECT customer_id, nextval('customer_key_seq') AS customer_key, true AS is_new
FROM new_customers
