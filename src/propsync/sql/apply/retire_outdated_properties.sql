-- Newer wins, per property, step 1 of 2: delete every stored property that an incoming update
-- beats. The incoming row wins iff its (update_ts, value) is greater: legacy (NULL) is older than
-- any timestamp, and equal timestamps are broken by the canonical JSON text, so the result never
-- depends on the order of batches. Step 2 (insert_newer_properties) then inserts every incoming
-- row whose key is absent: new properties and the winners of this step.
-- Why not one MERGE ... THEN UPDATE: DuckDB's UPDATE of rows spread over the table is slow and
-- keeps its undo data in memory (10k scattered rows: 5 s; 8.5M rows: 4.2 GB, and under a 1 GB
-- memory_limit it spilled for 15+ minutes). DELETE + INSERT of the same rows: 0.9 s and 1.1 GB.
MERGE INTO properties AS stored
USING staged_properties AS incoming
ON stored.customer_id = incoming.customer_id AND stored.property = incoming.property
WHEN MATCHED AND (
    coalesce(incoming.update_ts, -1) > coalesce(stored.update_ts, -1)
    OR (
        coalesce(incoming.update_ts, -1) = coalesce(stored.update_ts, -1)
        AND incoming.value > stored.value
    )
) THEN DELETE
