-- Newer wins, step 1 of 3: the staged updates that beat what is stored, or whose key is not
-- stored at all, in the newer-wins order (sql/schema/15_newer_wins_ts.sql), so the result never
-- depends on the order of batches. These rows are the batch's changes: step 2
-- retires the rows they beat, step 3 inserts them, and the batch's run file lists them
-- (store/runs.py).
CREATE OR REPLACE TEMP TABLE winning_properties AS
SELECT incoming.customer_key, incoming.property_id, incoming.value, incoming.update_ts, incoming.batch_id
FROM staged_properties AS incoming
LEFT JOIN property_values AS stored
    ON stored.customer_key = incoming.customer_key AND stored.property_id = incoming.property_id
WHERE stored.customer_key IS NULL
    OR newer_wins(incoming.update_ts, incoming.value, stored.update_ts, stored.value)
