INSERT INTO id_keys (id_type, id_value, customer_key, batch_id)
SELECT DISTINCT new_ids.id_type, new_ids.id_value, batch_customers.customer_key, $batch_id
FROM new_ids
JOIN batch_customers USING (customer_id)
