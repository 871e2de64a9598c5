-- An internal id, or the id of a customer merged into another, to the current customer (as
-- sql/read/resolve_internal_id.sql: a current customer first).
SELECT customer_id FROM (
    SELECT customer_id, 0 AS rank FROM customer_ids WHERE customer_id = :ref
    UNION ALL
    SELECT customer_id, 1 AS rank FROM customer_aliases WHERE old_customer_id = :ref
)
ORDER BY rank
LIMIT 1
