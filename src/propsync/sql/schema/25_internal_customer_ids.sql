CREATE OR REPLACE VIEW internal.customer_ids AS
SELECT id_keys.id_type, id_keys.id_value, customer_keys.customer_id, id_keys.batch_id,
    id_keys.customer_key
FROM id_keys
JOIN customer_keys USING (customer_key)
