-- Ids of customers merged away now belong to the surviving customer.
UPDATE customer_ids
SET customer_id = merges.customer_id
FROM merges
WHERE customer_ids.customer_id = merges.old_customer_id
