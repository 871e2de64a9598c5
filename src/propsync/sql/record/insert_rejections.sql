-- A batch's quarantine: each refused row or cell (batch_rejections, registered from the batch's
-- rejections frame) with its raw value and the reason, in row order.
INSERT INTO rejections BY NAME
SELECT
    $batch_id AS batch_id,
    row_nr,
    scope,
    "column"  AS column_name,
    raw_value,
    reason
FROM batch_rejections
ORDER BY row_nr
