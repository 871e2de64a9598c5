-- One GET by internal id in one statement (see customer_by_id.sql): the id of a current customer,
-- or of one merged into another (resolved to the survivor), as resolve_internal_id.sql.
WITH c AS MATERIALIZED (
    SELECT customer_id FROM (
        SELECT customer_id, 0 AS rank FROM customer_ids WHERE customer_id = :ref
        UNION ALL
        SELECT customer_id, 1 AS rank FROM customer_aliases WHERE old_customer_id = :ref
    )
    ORDER BY rank
    LIMIT 1
),
-- The customer's newest recent rows (store/read_model.py): a probe per live segment.
recent AS MATERIALIZED (
    SELECT property, value, update_ts, max(seg) AS seg
    FROM recent_properties
    WHERE seg IN (SELECT seg FROM recent_segments) AND customer_id = (SELECT customer_id FROM c)
    GROUP BY property
)
SELECT 0 AS part, value AS a, NULL AS b, NULL AS ts FROM meta WHERE key = 'version'
UNION ALL
SELECT 1, customer_id, NULL, NULL FROM c
UNION ALL
SELECT 2, i.id_type, i.id_value, NULL
FROM c JOIN customer_ids AS i ON i.customer_id = c.customer_id
UNION ALL
SELECT 3, property, value, update_ts FROM recent
UNION ALL
SELECT 3, p.property, p.value, p.update_ts
FROM c JOIN properties AS p ON p.customer_id = c.customer_id
WHERE p.property NOT IN (SELECT property FROM recent)
ORDER BY 1, 2, 3
