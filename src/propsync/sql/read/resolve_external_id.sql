-- ID_TYPE:ID_VALUE to its customer. The scan filters on id_value alone, the more selective column
-- (row groups whose min/max exclude it are skipped), and id_type is checked on the few rows it
-- returns; the MATERIALIZED CTE keeps the optimizer from merging the two filters.
WITH by_value AS MATERIALIZED (
    SELECT id_type, customer_id
    FROM customer_ids
    WHERE id_value = $id_value
)

SELECT customer_id
FROM by_value
WHERE id_type = $id_type
