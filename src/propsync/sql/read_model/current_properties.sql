-- Every current property: the newest recent row of a key, else properties' row. What a GET
-- reads for one customer (customer.sql), for the whole model (tests, checks).
WITH recent AS (
    SELECT customer_key, property_key, value, update_ts, max(seg) AS seg
    FROM recent_properties
    GROUP BY customer_key, property_key
),
current AS (
    SELECT customer_key, property_key, value, update_ts FROM recent
    UNION ALL
    SELECT p.customer_key, p.property_key, p.value, p.update_ts
    FROM properties AS p
    WHERE NOT EXISTS (
        SELECT 1 FROM recent AS r
        WHERE r.customer_key = p.customer_key AND r.property_key = p.property_key
    )
)
SELECT c.customer_id, n.property, cur.value, cur.update_ts
FROM current AS cur
JOIN customers AS c ON c.customer_key = cur.customer_key
JOIN property_names AS n ON n.property_key = cur.property_key
