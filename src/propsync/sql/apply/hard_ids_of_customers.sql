-- The hard ids (e.g. registered) that the given customers (by key) hold today.
WITH held AS MATERIALIZED (
    SELECT id_type, id_value, customer_key
    FROM id_keys
    WHERE list_contains($customer_keys, customer_key)
      AND list_contains($hard_types, id_type)
)

SELECT customer_keys.customer_id, held.id_type, held.id_value
FROM held
JOIN customer_keys USING (customer_key)
WHERE list_contains($customer_keys, customer_keys.customer_key)
