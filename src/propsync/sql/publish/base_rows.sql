-- The whole current state of the working database as one base file of the published layout
-- (the rows of sql/runs/write_run.sql); sorted afterwards (sort_rows.sql).
-- Written when a published version cannot continue the previous one's files (the first publish
-- of a warehouse upgraded to layout 3, or of a recreated one).
COPY (
    WITH aliases AS (
        SELECT 'merge' AS kind, survivor.customer_id, NULL::VARCHAR AS name,
            merged.customer_id AS value, NULL::BIGINT AS update_ts, alias_keys.batch_id
        FROM alias_keys
        JOIN customer_keys AS merged ON merged.customer_key = alias_keys.old_customer_key
        JOIN customer_keys AS survivor ON survivor.customer_key = alias_keys.customer_key
    ),

    ids AS (
        SELECT 'id' AS kind, customer_keys.customer_id, id_keys.id_type AS name,
            id_keys.id_value AS value, NULL::BIGINT AS update_ts, id_keys.batch_id
        FROM id_keys
        JOIN customer_keys USING (customer_key)
    ),

    props AS (
        SELECT 'property' AS kind, customer_keys.customer_id, property_names.property AS name,
            property_values.value, property_values.update_ts, property_values.batch_id
        FROM property_values
        JOIN customer_keys USING (customer_key)
        JOIN property_names USING (property_id)
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
