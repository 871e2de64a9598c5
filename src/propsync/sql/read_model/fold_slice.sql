-- One slice of a fold: the newest row of each key of segments up to :through whose customer is
-- in [:lo, :hi) replaces properties' row (recent rows are newer: no comparison). :hi may be a
-- BLOB, above every TEXT in SQLite's order: the last slice has no upper bound.
WITH newest AS (
    SELECT customer_id, property, value, update_ts, max(seg) AS seg
    FROM recent_properties
    WHERE seg IN (SELECT seg FROM recent_segments WHERE seg <= :through)
      AND customer_id >= :lo AND customer_id < :hi
    GROUP BY customer_id, property
)
INSERT INTO properties (customer_id, property, value, update_ts)
SELECT customer_id, property, value, update_ts
FROM newest
WHERE true  -- SQLite's parser needs a WHERE before ON CONFLICT in INSERT ... SELECT
ORDER BY customer_id, property
ON CONFLICT (customer_id, property) DO UPDATE SET
    value = excluded.value,
    update_ts = excluded.update_ts
