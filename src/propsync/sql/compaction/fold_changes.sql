-- Changes of consecutive versions folded into one file: each property's newest change (keeping
-- its version), every id and merge row. The views over the result give what they gave before.
COPY (
    WITH newest_properties AS (
        SELECT * FROM internal.newest_changes
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
