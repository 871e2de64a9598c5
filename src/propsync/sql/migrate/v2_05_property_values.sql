INSERT INTO property_values (customer_key, property_id, value, update_ts, batch_id)
SELECT customer_keys.customer_key, property_names.property_id, properties.value, properties.update_ts, properties.batch_id
FROM properties
JOIN customer_keys USING (customer_id)
JOIN property_names USING (property)
ORDER BY customer_keys.customer_key
