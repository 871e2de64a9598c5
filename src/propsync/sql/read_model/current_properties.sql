-- Every current property: the newest recent row of a key, else properties' row. What a GET
-- reads for one customer (customer_by_id.sql), for the whole model (tests, checks).
WITH recent AS (
    SELECT customer_id, property, value, update_ts, max(seg) AS seg
    FROM recent_properties
    GROUP BY customer_id, property
)
SELECT customer_id, property, value, update_ts FROM recent
UNION ALL
SELECT p.customer_id, p.property, p.value, p.update_ts
FROM properties AS p
WHERE NOT EXISTS (
    SELECT 1 FROM recent AS r WHERE r.customer_id = p.customer_id AND r.property = p.property
)
