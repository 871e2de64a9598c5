INSERT INTO property_names (property_id, property)
WITH names AS (
    SELECT DISTINCT property FROM properties
)

SELECT row_number() OVER (ORDER BY property), property
FROM names
