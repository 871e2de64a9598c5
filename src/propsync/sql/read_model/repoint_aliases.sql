-- A merge: aliases that pointed at the customer merged away now point at the survivor.
UPDATE customer_aliases SET customer_id = ?1 WHERE customer_id = ?2
