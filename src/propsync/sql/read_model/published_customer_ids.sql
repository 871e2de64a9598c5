-- The build's source (DuckDB, the published version): every id, in the read model's key order
-- so SQLite appends to its B-tree instead of inserting at random.
SELECT id_type, id_value, customer_id
FROM customer_ids
ORDER BY id_type, id_value
