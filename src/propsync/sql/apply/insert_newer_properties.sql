-- Newer wins, step 3 of 3: insert the winners. Staged keys are unique (staging deduplicates) and
-- step 2 removed the rows they beat, so no key is stored twice.
INSERT INTO property_values (customer_key, property_id, value, update_ts, batch_id)
SELECT customer_key, property_id, value, update_ts, batch_id
FROM winning_properties
