-- A run's id row: the id (?1, ?2) now belongs to the customer whose key is ?3.
INSERT INTO customer_ids (id_type, id_value, customer_id)
SELECT ?1, ?2, customer_id
FROM customers
WHERE customer_key = ?3
ON CONFLICT (id_type, id_value) DO UPDATE SET customer_id = excluded.customer_id
