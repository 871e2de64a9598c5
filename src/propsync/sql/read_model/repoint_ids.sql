-- A merge: the ids of the customer merged away now belong to the survivor.
UPDATE customer_ids SET customer_id = ?1 WHERE customer_id = ?2
