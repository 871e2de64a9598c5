-- One GET by ID_TYPE:ID_VALUE in one statement, so one read snapshot (no BEGIN/COMMIT around
-- several): part 0 the model's version, 1 the customer, 2 its ids, 3 its properties, sorted as
-- sql/read/customer_ids.sql and customer_properties.sql sort them (BINARY collation = bytes).
-- Without such a customer only part 0 comes back.
WITH c AS MATERIALIZED (
    SELECT customer_id FROM customer_ids WHERE id_type = :id_type AND id_value = :id_value
),
-- Its key in properties and recent_properties (none: it has no properties).
k AS MATERIALIZED (
    SELECT customer_key FROM customers WHERE customer_id = (SELECT customer_id FROM c)
),
-- The customer's newest recent rows (store/read_model.py): a probe per live segment.
recent AS MATERIALIZED (
    SELECT property_key, value, update_ts, max(seg) AS seg
    FROM recent_properties
    WHERE seg IN (SELECT seg FROM recent_segments)
      AND customer_key = (SELECT customer_key FROM k)
    GROUP BY property_key
),
current AS (
    SELECT property_key, value, update_ts FROM recent
    UNION ALL
    SELECT property_key, value, update_ts
    FROM properties
    WHERE customer_key = (SELECT customer_key FROM k)
      AND property_key NOT IN (SELECT property_key FROM recent)
)
SELECT 0 AS part, value AS a, NULL AS b, NULL AS ts FROM meta WHERE key = 'version'
UNION ALL
SELECT 1, customer_id, NULL, NULL FROM c
UNION ALL
SELECT 2, i.id_type, i.id_value, NULL
FROM c JOIN customer_ids AS i ON i.customer_id = c.customer_id
UNION ALL
SELECT 3, n.property, cur.value, cur.update_ts
FROM current AS cur JOIN property_names AS n ON n.property_key = cur.property_key
ORDER BY 1, 2, 3
