-- A run's new customer (its key is above every key the model holds): key ?1, internal id ?2.
INSERT INTO customers (customer_key, customer_id)
VALUES (?1, ?2)
ON CONFLICT DO NOTHING
