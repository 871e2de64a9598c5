-- The build's source (DuckDB, the published version): every property by customer key, in key
-- order, so SQLite appends.
SELECT customer_key, property, value, update_ts
FROM internal.current_properties
ORDER BY customer_key, property
