-- Newer wins, step 2 of 3: delete every stored property that a winning update beats.
-- Why DELETE + INSERT and not one MERGE ... THEN UPDATE: DuckDB's UPDATE of rows spread over the
-- table is slow and keeps its undo data in memory (10k scattered rows: 5 s; 8.5M rows: 4.2 GB,
-- and under a 1 GB memory_limit it spilled for 15+ minutes). DELETE + INSERT of the same rows:
-- 0.9 s and 1.1 GB.
-- When the delete would pin too much memory (store/apply.py), keep_unbeaten_properties.sql
-- writes the stored rows it would keep into a new table instead.
MERGE INTO property_values AS stored
USING (
    SELECT customer_key, property_id
    FROM winning_properties
) AS incoming
ON stored.customer_key = incoming.customer_key AND stored.property_id = incoming.property_id
WHEN MATCHED THEN DELETE
