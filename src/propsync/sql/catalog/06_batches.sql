-- Every batch the apply path has seen, applied or failed, with its counts: its newest record.
-- Two counts are counted from its rejections, as `propsync import` reports them:
-- rows_with_rejections, rows with a rejection of the whole row or of single cells (what
-- max_reject_ratio compares), and rows_with_cells_rejected, those of them not rejected whole.
CREATE VIEW batches AS
SELECT
    unnest(batch),
    coalesce(len(list_distinct([r.row_nr FOR r IN rejections])), 0) AS rows_with_rejections,
    rows_with_rejections - batch.rows_rejected AS rows_with_cells_rejected
FROM internal.batch_records
WHERE batch IS NOT NULL
