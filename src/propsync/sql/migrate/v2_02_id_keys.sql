INSERT INTO id_keys (id_type, id_value, customer_key, batch_id)
SELECT customer_ids.id_type, customer_ids.id_value, customer_keys.customer_key, customer_ids.batch_id
FROM customer_ids
JOIN customer_keys USING (customer_id)
