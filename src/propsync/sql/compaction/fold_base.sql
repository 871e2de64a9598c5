-- A new base: the state the views show, as rows of the run shape (sql/runs/write_run.sql). Merges
-- are folded in: ids point at their customer now, aliases at the final survivor, merged-away
-- customers' properties are gone (their names stay: aliases show them). Run over a catalog's
-- internal views (compaction) or over the working database's views of the same names and
-- columns (sql/schema/23_internal_views.sql: a publish that cannot continue the previous
-- version's files).
COPY (
    WITH customers AS (
        SELECT 'customer' AS kind, customer_key, NULL::BIGINT AS merged_key, NULL::VARCHAR AS name,
            customer_id AS value, NULL::BIGINT AS update_ts, NULL::VARCHAR AS batch_id
        FROM internal.customer_names
    ),

    aliases AS (
        SELECT 'merge' AS kind, customer_key, old_customer_key AS merged_key, NULL::VARCHAR AS name,
            NULL::VARCHAR AS value, NULL::BIGINT AS update_ts, batch_id
        FROM internal.customer_alias_keys
    ),

    ids AS (
        SELECT 'id' AS kind, customer_key, NULL::BIGINT AS merged_key, id_type AS name,
            id_value AS value, NULL::BIGINT AS update_ts, batch_id
        FROM internal.customer_id_keys
    ),

    props AS (
        SELECT 'property' AS kind, customer_key, NULL::BIGINT AS merged_key, property AS name, value,
            update_ts, batch_id
        FROM internal.current_properties
    ),

    all_rows AS (
        SELECT * FROM customers
        UNION ALL
        SELECT * FROM aliases
        UNION ALL
        SELECT * FROM ids
        UNION ALL
        SELECT * FROM props
    )

    SELECT *, $version::BIGINT AS version
    FROM all_rows
) TO $path (FORMAT parquet, COMPRESSION zstd)
