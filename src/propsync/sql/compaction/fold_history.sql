-- Batch records of consecutive versions folded into one file: each batch's newest record.
COPY (
    SELECT *
    FROM internal.batch_records
    ORDER BY batch_id
) TO $path (FORMAT parquet, COMPRESSION zstd)
