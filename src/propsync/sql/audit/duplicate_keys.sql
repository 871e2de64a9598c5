-- (customer, property) pairs stored more than once among the audited customers this batch
-- touched: all of them, or for a large batch those in the sample hash(customer_id) % $modulus = 0.
WITH touched AS (
    SELECT DISTINCT customer_id
    FROM staged_properties
    WHERE hash(customer_id) % $modulus = 0
)

SELECT count(*) AS duplicate_keys
FROM (
    SELECT properties.customer_id, properties.property
    FROM properties
    SEMI JOIN touched USING (customer_id)
    GROUP BY ALL
    HAVING count(*) > 1
)
