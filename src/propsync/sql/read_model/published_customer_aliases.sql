-- The build's source (DuckDB, the published version): every alias, in key order.
SELECT old_customer_id, customer_id
FROM customer_aliases
ORDER BY old_customer_id
