-- Segments :first..:last (the newest ones) merged into the new segment :seg, in key order: the
-- newest row of each key (SQLite takes the bare columns from the row of max(seg)).
WITH newest AS (
    SELECT customer_key, property_key, value, update_ts, max(seg) AS seg
    FROM recent_properties
    WHERE seg BETWEEN :first AND :last
    GROUP BY customer_key, property_key
)
INSERT INTO recent_properties (seg, customer_key, property_key, value, update_ts)
SELECT :seg, customer_key, property_key, value, update_ts
FROM newest
ORDER BY customer_key, property_key
