-- The build's source (DuckDB, the published version): every property by the model's keys (the
-- ranks of its customer id and its name: published_customers.sql, published_property_names.sql),
-- in key order so SQLite appends to its B-tree.
SELECT
    dense_rank() OVER (ORDER BY customer_id) AS customer_key,
    dense_rank() OVER (ORDER BY property) AS property_key,
    value,
    update_ts
FROM properties
ORDER BY customer_key, property_key
