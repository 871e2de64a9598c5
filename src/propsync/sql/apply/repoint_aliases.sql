-- Aliases that pointed at a customer merged away follow it to the survivor.
UPDATE alias_keys
SET customer_key = merge_keys.customer_key
FROM merge_keys
WHERE alias_keys.customer_key = merge_keys.old_customer_key
