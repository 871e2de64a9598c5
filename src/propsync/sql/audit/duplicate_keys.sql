-- (customer, property) pairs stored more than once among the audited customers.
SELECT count(*) AS duplicate_keys
FROM (
    SELECT customer_key, property_id
    FROM audit_stored
    GROUP BY ALL
    HAVING count(*) > 1
)
