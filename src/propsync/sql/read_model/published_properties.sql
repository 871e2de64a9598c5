-- The build's source (DuckDB, the published version): every property, in id order. The build
-- draws the customers' keys in this order (store/read_model.py, "Keys"), so SQLite appends.
SELECT customer_id, property, value, update_ts
FROM properties
ORDER BY customer_id, property
