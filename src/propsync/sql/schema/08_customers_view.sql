-- Analysts' customer list: every customer with its ids and property count.
CREATE OR REPLACE VIEW customers AS
WITH ids AS (
    SELECT customer_id, map_from_entries(list((id_type, id_value) ORDER BY id_type, id_value)) AS ids
    FROM customer_ids
    GROUP BY customer_id
),

property_counts AS (
    SELECT customer_id, count(*) AS property_count
    FROM properties
    GROUP BY customer_id
)

SELECT ids.customer_id, ids.ids, coalesce(property_counts.property_count, 0) AS property_count
FROM ids
LEFT JOIN property_counts USING (customer_id)
