DELETE FROM property_values
WHERE customer_key IN (SELECT old_customer_key FROM merge_keys)
