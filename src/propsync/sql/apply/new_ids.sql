-- The ids the single-id fast path found nowhere (resolved_single_ids.sql), each with the new
-- customer it creates.
CREATE OR REPLACE TEMP TABLE new_ids AS
SELECT DISTINCT id_type, id_value, customer_id
FROM resolved_ids
WHERE is_new
