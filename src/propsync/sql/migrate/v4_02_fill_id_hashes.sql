-- Every stored id by its hash (the upgrade then sorts the table: identity.sort_id_hashes).
INSERT INTO id_hashes (id_hash, customer_key)
SELECT id_hash(id_type, id_value), customer_key
FROM id_keys
