SELECT id_type, id_value
FROM customer_ids
WHERE customer_id = $customer_id
ORDER BY id_type, id_value
