-- The lookup rows follow repoint_merged_ids.sql: ids of merged-away customers find the survivor.
UPDATE id_hashes
SET customer_key = merge_keys.customer_key
FROM merge_keys
WHERE id_hashes.customer_key = merge_keys.old_customer_key
