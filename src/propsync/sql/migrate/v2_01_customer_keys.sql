-- Layout 1 to 2: every internal customer id gets a key, in id order, merged-away customers too.
INSERT INTO customer_keys (customer_key, customer_id)
WITH every_customer AS (
    SELECT customer_id FROM customer_ids
    UNION
    SELECT old_customer_id FROM customer_aliases
    UNION
    SELECT customer_id FROM customer_aliases
    UNION
    SELECT customer_id FROM properties
)

SELECT row_number() OVER (ORDER BY customer_id), customer_id
FROM every_customer
ORDER BY 1
