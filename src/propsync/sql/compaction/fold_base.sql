-- A new base: the state the views show, as rows of the run shape. Merges are folded in: ids point
-- at their customer now, aliases at the final survivor, merged-away customers' properties are
-- gone. Run over a catalog's views (compaction) or over the working database's views of the same
-- names and columns (a publish that cannot continue the previous version's files).
COPY (
    WITH aliases AS (
        SELECT 'merge' AS kind, customer_id, NULL::VARCHAR AS name, old_customer_id AS value,
            NULL::BIGINT AS update_ts, batch_id
        FROM customer_aliases
    ),

    ids AS (
        SELECT 'id' AS kind, customer_id, id_type AS name, id_value AS value,
            NULL::BIGINT AS update_ts, batch_id
        FROM customer_ids
    ),

    props AS (
        SELECT 'property' AS kind, customer_id, property AS name, value, update_ts, batch_id
        FROM properties
    ),

    all_rows AS (
        SELECT * FROM aliases
        UNION ALL
        SELECT * FROM ids
        UNION ALL
        SELECT * FROM props
    )

    SELECT *, $version::BIGINT AS version
    FROM all_rows
) TO $path (FORMAT parquet, COMPRESSION zstd)
