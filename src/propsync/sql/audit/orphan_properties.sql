-- Audited touched customers (see duplicate_keys) that no id resolves to.
SELECT count(*) AS orphans
FROM (
    SELECT DISTINCT customer_id
    FROM staged_properties
    WHERE hash(customer_id) % $modulus = 0
) AS touched
ANTI JOIN customer_ids USING (customer_id)
