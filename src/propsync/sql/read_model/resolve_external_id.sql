-- ID_TYPE:ID_VALUE to its customer (the primary key).
SELECT customer_id FROM customer_ids WHERE id_type = :id_type AND id_value = :id_value
