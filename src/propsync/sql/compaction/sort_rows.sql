-- A folded file's rows sorted for point reads: by kind, then properties and merges by customer
-- and ids by their value, so `WHERE customer_id = ...` and `WHERE id_value = ...` skip the row
-- groups they cannot match (and zstd packs neighbours: a third of the unsorted size). Sorting a
-- finished file is a plain sort that spills to disk; sorting inside the fold ran out of memory
-- at 768MB.
COPY (
    SELECT *
    FROM read_parquet($source)
    ORDER BY kind, CASE WHEN kind = 'id' THEN value ELSE customer_id END, customer_id, name
) TO $path (FORMAT parquet, COMPRESSION zstd)
