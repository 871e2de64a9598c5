-- Rewrite the lookup in id_hash order (identity.sort_id_hashes decides when).
CREATE OR REPLACE TABLE id_hashes AS
SELECT id_hash, customer_key
FROM id_hashes
ORDER BY id_hash, customer_key
