-- The existing customers the single-id fast path found (resolved_single_ids.sql): a key names
-- one customer and a customer has one key.
CREATE OR REPLACE TEMP TABLE known_customers AS
SELECT DISTINCT customer_id, customer_key
FROM resolved_ids
WHERE NOT is_new
