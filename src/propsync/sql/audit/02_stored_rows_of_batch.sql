-- audit/02_sample_stored.sql for a small batch, without a scan of every stored value: what is now
-- stored under the audited keys is what the merge kept of the rows it found (read back by row id)
-- and what the batch inserted (read back by row id from $first_row, where its inserts began
-- (apply/stored_row_estimate.sql), and its batch id: DuckDB reads only the row groups from there, where
-- the batch id alone read the batch_id column of every row group: 30 ms at 1M x 10).
CREATE OR REPLACE TEMP TABLE audit_stored AS
WITH found_rows AS (
    SELECT batch_stored.stored_row
    FROM batch_stored
    SEMI JOIN audit_incoming USING (customer_key, property_id)
),

kept AS (
    SELECT customer_key, property_id, value, update_ts
    FROM property_values
    WHERE rowid IN (SELECT stored_row FROM found_rows)
),

inserted AS (
    SELECT customer_key, property_id, value, update_ts
    FROM property_values
    WHERE rowid >= $first_row AND batch_id = $batch_id
)

SELECT * FROM kept
UNION ALL
SELECT inserted.*
FROM inserted
SEMI JOIN audit_incoming USING (customer_key, property_id)
