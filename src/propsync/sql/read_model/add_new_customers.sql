-- The staged rows' customers without a key get the next ones, in id order.
WITH new_customers AS (
    SELECT DISTINCT r.customer_id
    FROM run_properties AS r
    WHERE NOT EXISTS (SELECT 1 FROM customers AS c WHERE c.customer_id = r.customer_id)
)
INSERT INTO customers (customer_id)
SELECT customer_id FROM new_customers ORDER BY customer_id
