-- Changes of consecutive versions folded into one file: each property's newest change (keeping
-- its version), every id and merge row. The views over the result give what they gave before.
COPY (
    -- A key's newest version, then its row: a max() per key and a join, where a row_number()
    -- window took twice the CPU under the 768MB limit (docs/benchmarks.md). A version lists a key
    -- once, so the join finds one row.
    WITH newest_versions AS (
        SELECT customer_id, name, max(version) AS version
        FROM internal.change_rows
        WHERE kind = 'property'
        GROUP BY customer_id, name
    ),

    newest_properties AS (
        SELECT changes.*
        FROM internal.change_rows AS changes
        SEMI JOIN newest_versions AS newest
            ON newest.customer_id = changes.customer_id
            AND newest.name = changes.name
            AND newest.version = changes.version
        WHERE changes.kind = 'property'
    ),

    ids_and_merges AS (
        SELECT *
        FROM internal.change_rows
        WHERE kind <> 'property'
    ),

    folded AS (
        SELECT * FROM ids_and_merges
        UNION ALL
        SELECT * FROM newest_properties
    )

    SELECT *
    FROM folded
) TO $path (FORMAT parquet, COMPRESSION zstd)
