-- The build's source (DuckDB, the published version): every property name and its key in the
-- model, drawn in name order.
WITH names AS (
    SELECT DISTINCT property FROM internal.current_properties
)
SELECT row_number() OVER (ORDER BY property) AS property_key, property
FROM names
ORDER BY property_key
