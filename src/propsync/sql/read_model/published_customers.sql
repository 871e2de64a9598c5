-- The build's source (DuckDB, the published version): every customer's key and internal id (a
-- customer holds at least one id until it is merged away), in key order, so SQLite appends.
SELECT DISTINCT customer_key, customer_id
FROM internal.customer_ids
ORDER BY customer_key
