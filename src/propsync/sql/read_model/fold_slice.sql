-- One slice of a fold: the newest row of each key of segments up to :through whose customer key
-- is in [:lo, :hi] replaces properties' row (recent rows are newer: no comparison).
WITH newest AS (
    SELECT customer_key, property_key, value, update_ts, max(seg) AS seg
    FROM recent_properties
    WHERE seg IN (SELECT seg FROM recent_segments WHERE seg <= :through)
      AND customer_key BETWEEN :lo AND :hi
    GROUP BY customer_key, property_key
)
INSERT INTO properties (customer_key, property_key, value, update_ts)
SELECT customer_key, property_key, value, update_ts
FROM newest
WHERE true  -- SQLite's parser needs a WHERE before ON CONFLICT in INSERT ... SELECT
ORDER BY customer_key, property_key
ON CONFLICT (customer_key, property_key) DO UPDATE SET
    value = excluded.value,
    update_ts = excluded.update_ts
