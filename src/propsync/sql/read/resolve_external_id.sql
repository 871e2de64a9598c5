-- ID_TYPE:ID_VALUE to its customer. DuckDB scans an ART index only for a single equality filter
-- on the indexed column, so the scan filters on id_value alone (the serving copy's index
-- customer_ids_by_value, sql/serving/) and id_type is checked on the few rows it returns; the
-- MATERIALIZED CTE keeps the optimizer from pushing the id_type filter back into the scan.
WITH by_value AS MATERIALIZED (
    SELECT id_type, customer_id
    FROM customer_ids
    WHERE id_value = $id_value
)

SELECT customer_id
FROM by_value
WHERE id_type = $id_type
