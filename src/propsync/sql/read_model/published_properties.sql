-- The build's source (DuckDB, the published version): every property, in key order.
SELECT customer_id, property, value, update_ts
FROM properties
ORDER BY customer_id, property
