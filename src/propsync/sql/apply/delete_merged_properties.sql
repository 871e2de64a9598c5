DELETE FROM properties
WHERE customer_id IN (SELECT old_customer_id FROM merges)
