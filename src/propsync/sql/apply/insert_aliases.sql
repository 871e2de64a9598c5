INSERT INTO alias_keys (old_customer_key, customer_key, batch_id)
SELECT old_customer_key, customer_key, $batch_id
FROM merge_keys
