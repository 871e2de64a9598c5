-- The build's source (DuckDB, the published version): every customer with properties and its
-- key in the model, drawn in id order (as published_properties.sql draws them).
WITH customers AS (
    SELECT DISTINCT customer_id FROM properties
)
SELECT row_number() OVER (ORDER BY customer_id) AS customer_key, customer_id
FROM customers
ORDER BY customer_key
