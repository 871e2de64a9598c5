CREATE OR REPLACE VIEW internal.customer_names AS
SELECT customer_key, customer_id
FROM customer_keys
