-- Newer wins, step 3 of 3: insert the winners. Staged keys are unique (staging deduplicates) and
-- step 2 removed the rows they beat, so no key is stored twice. The same range of keys as step 2.
INSERT INTO property_values (customer_key, property_id, value, update_ts, batch_id)
SELECT customer_key, property_id, value, update_ts, batch_id
FROM winning_properties
WHERE customer_key BETWEEN $first_key AND $last_key
