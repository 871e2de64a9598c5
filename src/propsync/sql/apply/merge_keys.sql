-- The batch's merges by key: both customers of a merge are known (they were looked up).
CREATE OR REPLACE TEMP TABLE merge_keys AS
SELECT merged.customer_key AS old_customer_key, survivor.customer_key
FROM merges
JOIN batch_customers AS merged ON merged.customer_id = merges.old_customer_id
JOIN batch_customers AS survivor ON survivor.customer_id = merges.customer_id
