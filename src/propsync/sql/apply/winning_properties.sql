-- Newer wins, step 1 of 3: the staged updates that beat what is stored, or whose key is not
-- stored at all. An incoming row wins iff its (update_ts, value) is greater: legacy (NULL) is
-- older than any timestamp, and equal timestamps are broken by the canonical JSON text, so the
-- result never depends on the order of batches. These rows are the batch's changes: step 2
-- retires the rows they beat, step 3 inserts them, and the batch's run file lists them
-- (store/runs.py).
CREATE OR REPLACE TEMP TABLE winning_properties AS
SELECT incoming.customer_id, incoming.property, incoming.value, incoming.update_ts, incoming.batch_id
FROM staged_properties AS incoming
LEFT JOIN properties AS stored
    ON stored.customer_id = incoming.customer_id AND stored.property = incoming.property
WHERE stored.customer_id IS NULL
    OR coalesce(incoming.update_ts, -1) > coalesce(stored.update_ts, -1)
    OR (
        coalesce(incoming.update_ts, -1) = coalesce(stored.update_ts, -1)
        AND incoming.value > stored.value
    )
