-- The staged rows straight into properties: the winners, already decided by the writer (no
-- comparison here), in key order.
WITH keyed AS (
    SELECT c.customer_key, n.property_key, r.value, r.update_ts
    FROM run_properties AS r
    JOIN customers AS c ON c.customer_id = r.customer_id
    JOIN property_names AS n ON n.property = r.property
)
INSERT INTO properties (customer_key, property_key, value, update_ts)
SELECT customer_key, property_key, value, update_ts
FROM keyed
WHERE true  -- SQLite's parser needs a WHERE before ON CONFLICT in INSERT ... SELECT
ORDER BY customer_key, property_key
ON CONFLICT (customer_key, property_key) DO UPDATE SET
    value = excluded.value,
    update_ts = excluded.update_ts
