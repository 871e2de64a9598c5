-- A run's id row (the id now belongs to customer_id), and the build's rows.
INSERT INTO customer_ids (id_type, id_value, customer_id)
VALUES (?1, ?2, ?3)
ON CONFLICT (id_type, id_value) DO UPDATE SET customer_id = excluded.customer_id
