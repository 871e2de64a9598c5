-- audit/02_sample_stored.sql for a small batch, without a scan of every stored value: what is now
-- stored under the audited keys is what the merge found of them (batch_stored, read before the
-- merge) less the rows its winners retired, plus what the batch inserted. The retired rows are
-- exactly the winners' stored rows: the delete (apply/retire_beaten_rows.sql) names them by row id
-- and store/apply.py checks that it deleted as many. Read back from property_values: the values of
-- the kept rows tied in time with an audited update (the only ones a value decides; rare, so this
-- is no scan when there are none), and the inserted rows, by row id from $first_row, where its
-- inserts began (apply/stored_row_estimate.sql), and its batch id: DuckDB reads only the row groups
-- from there. A read-back of every kept row by row id scanned all row ids (44 ms at 1M x 10).
CREATE OR REPLACE TEMP TABLE audit_stored AS
WITH kept AS (
    SELECT batch_stored.stored_row, batch_stored.customer_key, batch_stored.property_id,
        batch_stored.update_ts
    FROM batch_stored
    SEMI JOIN audit_incoming USING (customer_key, property_id)
    ANTI JOIN winning_properties USING (stored_row)
),

tied AS (
    SELECT kept.stored_row
    FROM kept
    JOIN audit_incoming USING (customer_key, property_id)
    WHERE newer_wins_ts(kept.update_ts) = newer_wins_ts(audit_incoming.update_ts)
),

tied_values AS (
    SELECT rowid AS stored_row, value
    FROM property_values
    WHERE rowid IN (SELECT stored_row FROM tied)
),

inserted AS (
    SELECT customer_key, property_id, value, update_ts
    FROM property_values
    WHERE rowid >= $first_row AND batch_id = $batch_id
)

SELECT kept.customer_key, kept.property_id, tied_values.value, kept.update_ts
FROM kept
LEFT JOIN tied_values USING (stored_row)
UNION ALL
SELECT inserted.*
FROM inserted
SEMI JOIN audit_incoming USING (customer_key, property_id)
