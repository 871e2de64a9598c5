-- Segments :first..:last (the newest ones) merged into the new segment :seg, in key order: the
-- newest row of each key (SQLite takes the bare columns from the row of max(seg)).
WITH newest AS (
    SELECT customer_id, property, value, update_ts, max(seg) AS seg
    FROM recent_properties
    WHERE seg BETWEEN :first AND :last
    GROUP BY customer_id, property
)
INSERT INTO recent_properties (seg, customer_id, property, value, update_ts)
SELECT :seg, customer_id, property, value, update_ts
FROM newest
ORDER BY customer_id, property
