-- Aliases that pointed at a customer merged away follow it to the survivor.
UPDATE customer_aliases
SET customer_id = merges.customer_id
FROM merges
WHERE customer_aliases.customer_id = merges.old_customer_id
