-- A new base: the state the views show, as rows of the run shape (sql/runs/write_run.sql). Merges
-- are folded in: ids point at their customer now, aliases at the final survivor, merged-away
-- customers' properties are gone. Run over a catalog's internal views (compaction) or over the
-- working database's views of the same names and columns (sql/schema/23-26: a publish that
-- cannot continue the previous version's files).
COPY (
    WITH aliases AS (
        SELECT 'merge' AS kind, customer_id, NULL::VARCHAR AS name, old_customer_id AS value,
            NULL::BIGINT AS update_ts, batch_id, customer_key, old_customer_key AS merged_key
        FROM internal.customer_aliases
    ),

    ids AS (
        SELECT 'id' AS kind, customer_id, id_type AS name, id_value AS value,
            NULL::BIGINT AS update_ts, batch_id, customer_key, NULL::BIGINT AS merged_key
        FROM internal.customer_ids
    ),

    props AS (
        SELECT 'property' AS kind, customer_id, property AS name, value, update_ts, batch_id,
            customer_key, NULL::BIGINT AS merged_key
        FROM internal.current_properties
    ),

    all_rows AS (
        SELECT * FROM aliases
        UNION ALL
        SELECT * FROM ids
        UNION ALL
        SELECT * FROM props
    )

    SELECT kind, customer_id, name, value, update_ts, batch_id, $version::BIGINT AS version,
        customer_key, merged_key
    FROM all_rows
) TO $path (FORMAT parquet, COMPRESSION zstd)
