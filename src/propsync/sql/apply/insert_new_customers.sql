INSERT INTO customer_keys (customer_key, customer_id)
SELECT customer_key, customer_id
FROM batch_customers
WHERE is_new
ORDER BY customer_key
