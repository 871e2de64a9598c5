-- A batch's record: what it read, applied, found stale and refused, and the version it made.
-- rows_rejected: rows quarantined whole; cells_rejected: the cells not applied for a rejection
-- (every cell of a row rejected, and each cell rejected alone), so that properties_applied +
-- properties_stale + cells_rejected = cells_incoming. The published view adds the counts of rows
-- with rejections from the batch's rejections (catalog/06_batches.sql).
INSERT INTO batches BY NAME
SELECT
    $batch_id                AS batch_id,
    $kind                    AS kind,
    $source                  AS source,
    $status                  AS status,
    $message                 AS message,
    $started_at_us           AS started_at_us,
    $applied_at_us           AS applied_at_us,
    $rows_read               AS rows_read,
    $cells_incoming          AS cells_incoming,
    $properties_applied      AS properties_applied,
    $properties_stale        AS properties_stale,
    $rows_rejected           AS rows_rejected,
    $cells_rejected          AS cells_rejected,
    $default_timestamp_rows  AS default_timestamp_rows,
    $customers_created       AS customers_created,
    $customers_merged        AS customers_merged,
    $version                 AS version
