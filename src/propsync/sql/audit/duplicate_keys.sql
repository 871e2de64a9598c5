-- (customer, property) pairs stored more than once among the customers this batch touched.
WITH touched AS (
    SELECT DISTINCT customer_id FROM staged_properties
)

SELECT count(*) AS duplicate_keys
FROM (
    SELECT properties.customer_id, properties.property
    FROM properties
    SEMI JOIN touched USING (customer_id)
    GROUP BY ALL
    HAVING count(*) > 1
)
