-- Analysts' customer list: every customer with its ids (as the API shows them: each id type to
-- the sorted list of its values, a customer may hold several cookies) and its property count.
CREATE OR REPLACE VIEW customers AS
WITH ids_by_type AS (
    SELECT customer_id, id_type, list(id_value ORDER BY id_value) AS id_values
    FROM customer_ids
    GROUP BY customer_id, id_type
),

ids AS (
    SELECT customer_id, map_from_entries(list((id_type, id_values) ORDER BY id_type)) AS ids
    FROM ids_by_type
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
