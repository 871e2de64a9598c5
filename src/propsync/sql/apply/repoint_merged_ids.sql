-- Ids of customers merged away now belong to the surviving customer.
UPDATE id_keys
SET customer_key = merge_keys.customer_key
FROM merge_keys
WHERE id_keys.customer_key = merge_keys.old_customer_key
