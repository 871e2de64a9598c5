-- New ids in customer_key order: new customers' keys are the largest yet, so the table stays
-- ordered by key but for ids added to older customers, and reads by key prune row groups.
INSERT INTO id_keys (id_type, id_value, customer_key, batch_id)
SELECT DISTINCT new_ids.id_type, new_ids.id_value, batch_customers.customer_key, $batch_id
FROM new_ids
JOIN batch_customers USING (customer_id)
ORDER BY batch_customers.customer_key, new_ids.id_type, new_ids.id_value
