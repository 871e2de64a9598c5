-- The lookup rows of the ids insert_new_ids.sql stores, appended after the sorted ones.
INSERT INTO id_hashes (id_hash, customer_key)
SELECT id_hash(stored.id_type, stored.id_value), stored.customer_key
FROM (
    SELECT DISTINCT new_ids.id_type, new_ids.id_value, batch_customers.customer_key
    FROM new_ids
    JOIN batch_customers USING (customer_id)
) AS stored
