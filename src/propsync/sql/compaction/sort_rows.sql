-- A folded file's rows sorted for point reads: by kind, then properties and merges by customer
-- key, ids by their value and customer rows by their internal id, so `WHERE customer_key = ...`,
-- `WHERE id_value = ...` and `WHERE customer_id = ...` skip the row groups they cannot match
-- (and zstd packs neighbours). Sorting a finished file is a plain sort that spills to disk;
-- sorting inside the fold ran out of memory at 768MB.
COPY (
    SELECT *
    FROM read_parquet($source)
    ORDER BY kind, CASE WHEN kind IN ('id', 'customer') THEN value END, customer_key, name
) TO $path (FORMAT parquet, COMPRESSION zstd)
