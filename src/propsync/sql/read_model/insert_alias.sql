-- A merge: the customer merged away resolves to the survivor.
INSERT INTO customer_aliases (old_customer_id, customer_id)
VALUES (?1, ?2)
ON CONFLICT (old_customer_id) DO UPDATE SET customer_id = excluded.customer_id
