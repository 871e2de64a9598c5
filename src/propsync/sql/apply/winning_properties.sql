-- Newer wins, step 1 of 3: the staged updates that beat what is stored, or whose key is not
-- stored at all. An incoming row wins iff its (update_ts, value) is greater: legacy (NULL) is
-- older than any timestamp, and equal timestamps are broken by the canonical JSON text, so the
-- result never depends on the order of batches. These rows are the batch's changes: step 2
-- retires the rows they beat, step 3 inserts them, and the batch's run file lists them
-- (store/runs.py).
CREATE OR REPLACE TEMP TABLE winning_properties AS
SELECT incoming.customer_key, incoming.property_id, incoming.value, incoming.update_ts, incoming.batch_id
FROM staged_properties AS incoming
LEFT JOIN property_values AS stored
    ON stored.customer_key = incoming.customer_key AND stored.property_id = incoming.property_id
WHERE stored.customer_key IS NULL
    OR coalesce(incoming.update_ts, -1) > coalesce(stored.update_ts, -1)
    OR (
        coalesce(incoming.update_ts, -1) = coalesce(stored.update_ts, -1)
        AND incoming.value > stored.value
    )
