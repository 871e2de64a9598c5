INSERT INTO customer_ids (id_type, id_value, customer_id, batch_id)
SELECT DISTINCT id_type, id_value, customer_id, $batch_id
FROM new_ids
