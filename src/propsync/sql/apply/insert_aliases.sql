INSERT INTO customer_aliases (old_customer_id, customer_id, batch_id)
SELECT old_customer_id, customer_id, $batch_id
FROM merges
