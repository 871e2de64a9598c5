-- The hard ids (e.g. registered) that the given customers (by key) hold today.
SELECT customer_keys.customer_id, id_keys.id_type, id_keys.id_value
FROM id_keys
JOIN customer_keys USING (customer_key)
WHERE list_contains($customer_keys, id_keys.customer_key)
  AND list_contains($hard_types, id_keys.id_type)
