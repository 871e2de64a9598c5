-- The stored rows of the batch's keys, with their row ids: the one scan of property_values a small
-- batch makes. The winners (winning_batch_properties.sql), the delete (retire_beaten_rows.sql) and
-- the audit (audit/02_stored_rows_of_batch.sql) read this instead of scanning again. The batch's
-- keys are scattered over the whole table, so every scan reads all of it (at 1M x 10 each took
-- 60-100 ms of a 20k-command apply); the time column only: values are fetched for ties alone.
CREATE OR REPLACE TEMP TABLE batch_stored AS
SELECT stored.rowid AS stored_row, stored.customer_key, stored.property_id, stored.update_ts
FROM property_values AS stored
SEMI JOIN staged_properties AS incoming
    ON stored.customer_key = incoming.customer_key AND stored.property_id = incoming.property_id
