-- The staged rows as segment :seg of recent_properties, in key order: an append.
WITH keyed AS (
    SELECT c.customer_key, n.property_key, r.value, r.update_ts
    FROM run_properties AS r
    JOIN customers AS c ON c.customer_id = r.customer_id
    JOIN property_names AS n ON n.property = r.property
)
INSERT INTO recent_properties (seg, customer_key, property_key, value, update_ts)
SELECT :seg, customer_key, property_key, value, update_ts
FROM keyed
ORDER BY customer_key, property_key
