-- For a batch too large to copy its stored rows (stored_of_batch.sql) the winners join the whole
-- table, as one scan; no row ids: the delete joins on the keys (retire_outdated_properties.sql).
CREATE OR REPLACE TEMP VIEW batch_stored AS
SELECT NULL::BIGINT AS stored_row, customer_key, property_id, update_ts
FROM property_values
