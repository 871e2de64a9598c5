-- An internal id, or the id of a customer merged into another, to the current customer.
WITH candidates AS (
    SELECT customer_id FROM customer_ids WHERE customer_id = $ref
    UNION ALL
    SELECT customer_id FROM customer_aliases WHERE old_customer_id = $ref
)

SELECT customer_id FROM candidates LIMIT 1
