-- A committed batch's changes, one row each, written as its run file (store/runs.py). A follower
-- applies them by kind, in this order: merges, then ids, then properties.
--   merge:    customer value was merged into customer customer_id (its ids and aliases follow it,
--             its properties are gone: the survivor's winners are among the property rows)
--   id:       the id (name, value) now belongs to customer_id
--   property: customer_id's property name is now value (canonical JSON) as of update_ts
-- Every row carries the run's version (published views order changes by it, sql/catalog/) and its
-- customer's integer key as well as its id: customer_key (for a merge the survivor's, merged_key
-- the merged-away one's), which compaction groups by and the read model keys its rows by, while
-- the views analysts filter keep the ids (a filter on customer_id reaches the files' scans).
-- zstd level 1: at 1M x 10 (8.7M rows) 12% less CPU than the default level, and no larger.
COPY (
    WITH merged AS (
        SELECT 'merge' AS kind, merges.customer_id, NULL::VARCHAR AS name,
            merges.old_customer_id AS value, NULL::BIGINT AS update_ts, $batch_id AS batch_id,
            survivor.customer_key, old.customer_key AS merged_key
        FROM merges
        JOIN batch_customers AS survivor ON survivor.customer_id = merges.customer_id
        JOIN batch_customers AS old ON old.customer_id = merges.old_customer_id
    ),

    new_ids AS (
        SELECT DISTINCT 'id' AS kind, new_ids.customer_id, new_ids.id_type AS name,
            new_ids.id_value AS value, NULL::BIGINT AS update_ts, $batch_id AS batch_id,
            batch_customers.customer_key, NULL::BIGINT AS merged_key
        FROM new_ids
        JOIN batch_customers USING (customer_id)
    ),

    -- Every winner's customer is one the batch resolved to (a merge's survivor included); the
    -- winners are the batch's own (apply/winning_batch_properties.sql: no batch_id column).
    batch_winners AS (
        SELECT 'property' AS kind, batch_customers.customer_id, property_names.property AS name,
            winning_properties.value, winning_properties.update_ts, $batch_id AS batch_id,
            winning_properties.customer_key, NULL::BIGINT AS merged_key
        FROM winning_properties
        JOIN batch_customers USING (customer_key)
        JOIN property_names USING (property_id)
    ),

    -- A merged-in property that the batch's own update then beat is listed once, as the latter.
    merged_winners_kept AS (
        SELECT 'property' AS kind, batch_customers.customer_id, property_names.property AS name,
            merged_winners.value, merged_winners.update_ts, merged_winners.batch_id,
            merged_winners.customer_key, NULL::BIGINT AS merged_key
        FROM merged_winners
        ANTI JOIN winning_properties USING (customer_key, property_id)
        JOIN batch_customers USING (customer_key)
        JOIN property_names USING (property_id)
    ),

    all_rows AS (
        SELECT * FROM merged
        UNION ALL
        SELECT * FROM new_ids
        UNION ALL
        SELECT * FROM merged_winners_kept
        UNION ALL
        SELECT * FROM batch_winners
    )

    SELECT kind, customer_id, name, value, update_ts, batch_id, $version::BIGINT AS version,
        customer_key, merged_key
    FROM all_rows
) TO $path (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1)
