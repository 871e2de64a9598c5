-- One GET in one statement, so one read snapshot (no BEGIN/COMMIT around several): part 0 the
-- model's version, 1 the customer, 2 its ids, 3 its properties, sorted as sql/read/customer_ids.sql
-- and customer_properties.sql sort them (BINARY collation = bytes). :id_type and :ref name an id
-- (ID_TYPE:ID_VALUE); :id_type NULL makes :ref an internal id, of a current customer or of one
-- merged into another (resolved to the survivor), as resolve_internal_id.sql. Without such a
-- customer only part 0 comes back.
WITH c AS MATERIALIZED (
    SELECT customer_id FROM (
        SELECT customer_id, 0 AS rank
        FROM customer_ids
        WHERE :id_type IS NOT NULL AND id_type = :id_type AND id_value = :ref
        UNION ALL
        SELECT customer_id, 1 AS rank
        FROM customer_ids
        WHERE :id_type IS NULL AND customer_id = :ref
        UNION ALL
        SELECT customer_id, 2 AS rank
        FROM customer_aliases
        WHERE :id_type IS NULL AND old_customer_id = :ref
    )
    ORDER BY rank
    LIMIT 1
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
