-- A run's customer row: the warehouse created customer ?1, whose internal id is ?2.
INSERT INTO customers (customer_key, customer_id)
VALUES (?1, ?2)
ON CONFLICT (customer_key) DO NOTHING
