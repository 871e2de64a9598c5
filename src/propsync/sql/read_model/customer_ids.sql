-- A customer's ids, sorted as sql/read/customer_ids.sql sorts them (BINARY collation = bytes).
SELECT id_type, id_value FROM customer_ids WHERE customer_id = :customer_id
ORDER BY id_type, id_value
