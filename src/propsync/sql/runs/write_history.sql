-- The history file of a run: the whole record of every batch in history_pending, one row each,
-- as of this version. The published views keep each batch's newest record (sql/catalog/).
COPY (
    WITH pending AS (
        SELECT DISTINCT batch_id
        FROM history_pending
    ),

    batch_rows AS (
        SELECT batches.batch_id, batches AS batch
        FROM batches
        SEMI JOIN pending USING (batch_id)
    ),

    rejection_lists AS (
        SELECT rejections.batch_id, list(rejections ORDER BY row_nr, scope, column_name) AS rejections
        FROM rejections
        SEMI JOIN pending USING (batch_id)
        GROUP BY rejections.batch_id
    ),

    quality_lists AS (
        SELECT quality_results.batch_id,
            list(quality_results ORDER BY stage, suite, expectation, column_name) AS quality
        FROM quality_results
        SEMI JOIN pending USING (batch_id)
        GROUP BY quality_results.batch_id
    )

    SELECT
        $version::BIGINT AS run_version,
        pending.batch_id,
        batch_rows.batch,
        rejection_lists.rejections,
        quality_lists.quality
    FROM pending
    LEFT JOIN batch_rows USING (batch_id)
    LEFT JOIN rejection_lists USING (batch_id)
    LEFT JOIN quality_lists USING (batch_id)
    ORDER BY pending.batch_id
) TO $path (FORMAT parquet, COMPRESSION zstd)
