-- audit/02_sample_stored.sql for a small batch, without a scan of every stored value: what is now
-- stored under the audited keys is what the merge kept of the rows it found (read back by row id)
-- and what the batch inserted (read back by its batch id: its rows are the newest, so DuckDB
-- skips the row groups whose batch_id range misses it).
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
    WHERE batch_id = $batch_id
)

SELECT * FROM kept
UNION ALL
SELECT inserted.*
FROM inserted
SEMI JOIN audit_incoming USING (customer_key, property_id)
