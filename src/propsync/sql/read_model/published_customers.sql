-- The build's source (DuckDB, the published version): every customer's key and internal id, in
-- key order, so SQLite appends.
SELECT customer_key, customer_id
FROM internal.customer_names
ORDER BY customer_key
