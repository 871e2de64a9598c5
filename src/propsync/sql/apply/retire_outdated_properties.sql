-- Newer wins, step 2 of 3: delete every stored property that a winning update beats.
-- Why DELETE + INSERT and not one MERGE ... THEN UPDATE: DuckDB's UPDATE of rows spread over the
-- table is slow and keeps its undo data in memory (10k scattered rows: 5 s; 8.5M rows: 4.2 GB,
-- and under a 1 GB memory_limit it spilled for 15+ minutes). DELETE + INSERT of the same rows:
-- 0.9 s and 1.1 GB.
-- One range of customer keys at a time ($first_key..$last_key, store/apply.py): a MERGE of 85M
-- winners into 100M rows ran out of a 768MB memory limit; ranges of 10M rows each stay within it.
MERGE INTO property_values AS stored
USING (
    SELECT customer_key, property_id
    FROM winning_properties
    WHERE customer_key BETWEEN $first_key AND $last_key
) AS incoming
ON stored.customer_key = incoming.customer_key AND stored.property_id = incoming.property_id
WHEN MATCHED THEN DELETE
