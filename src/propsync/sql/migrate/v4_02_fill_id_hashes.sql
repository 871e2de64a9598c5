INSERT INTO id_hashes (id_hash, customer_key)
SELECT id_hash(id_type, id_value), customer_key
FROM id_keys
ORDER BY 1, 2
