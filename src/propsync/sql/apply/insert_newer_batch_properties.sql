-- Newer wins, step 3 of 3, for the batch's own updates: insert_newer_properties.sql with the
-- batch's id (its winners carry none, see winning_batch_properties.sql).
INSERT INTO property_values (customer_key, property_id, value, update_ts, batch_id)
SELECT customer_key, property_id, value, update_ts, $batch_id
FROM winning_properties
