-- id_keys in customer_key order, as insert_new_ids.sql appends: the lookup confirms a candidate
-- by key and the audits read a batch's customers by key, each pruning row groups by their range.
CREATE OR REPLACE TABLE id_keys AS
SELECT id_type, id_value, customer_key, batch_id
FROM id_keys
ORDER BY customer_key, id_type, id_value
