-- The hard ids (e.g. registered) that the given customers hold today.
SELECT customer_id, id_type, id_value
FROM customer_ids
WHERE list_contains($customers, customer_id)
  AND list_contains($hard_types, id_type)
